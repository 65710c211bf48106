-- Unknown supplier outcomes are resolved within a bound: when order-status first said the
-- supplier has no order with our transactionId (Unix seconds; NULL: it has not said so).
ALTER TABLE orders ADD COLUMN supplier_absent_since_ts REAL;
