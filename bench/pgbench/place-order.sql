-- pgbench: placing the cart as an order, as the service does it. MUST mirror the statement src/orders/placing.ts
-- (PLACE_ORDER) sends: one call of place_order (drizzle/0005_place_order.sql), in autocommit; update this file
-- whenever it changes, or the bench's `limit` stops being the service's limit. The service predicts what the order
-- sells from the cart it last answered (add-to-cart.sql's, here): its one product (:pid), and no sell-out (the bench's
-- products keep plenty of units), so the call below is the one round trip the service makes; a prediction the
-- function finds wrong would cost the service a second call. The parameters the bench never sets (address,
-- Idempotency-Key) are NULL; the address fingerprint is then the hash of `null`, unused without a key. The service's
-- Redis work around the call is not here: this is what PostgreSQL alone allows. bench/limit.ts runs it after
-- add-to-cart.sql, which puts one line in the cart of buyer :uid.
SELECT place_order(:uid::int, NULL::jsonb, NULL::varchar, '74234e98afe7498fb5daf1f36ac2d78a'::text, ARRAY[:pid]::int[], '{}'::int[],
                   'Order #%s has been placed.'::text) AS outcome;
