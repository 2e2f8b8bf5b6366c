-- pgbench: placing the cart as an order, as the service does it. MUST mirror the statements src/orders/placing.ts
-- (placeWithin) sends: BEGIN, the lock statement (the cart's lockLines, with the user's notification lock and the
-- order id folded in), the one data-modifying CTE (writeOrder: the catalogue's sellStock, the order, its items and
-- history, the notifications' insertNotification, the cart's deleteLines), COMMIT; update this file whenever they
-- change, or the bench's `limit` stops being the service's limit. What differs is only what pgbench cannot send as
-- the service does: the one-element id arrays are ARRAY[...] instead of a '{…}' literal, the message is built in
-- SQL, and the parameters the bench never sets (address, Idempotency-Key) are NULL literals. The service's Redis
-- work inside and after the transaction is not here: this is what PostgreSQL alone allows. bench/limit.ts runs it
-- after add-to-cart.sql, which puts one line in the cart of buyer :uid.
BEGIN;
-- the lock statement (bench/limit.ts EXPLAINs the statement below)
SELECT c.id, c.product_id AS "productId", c.quantity, p.stock, p.is_active AS "isActive",
       p.category_id AS "categoryId", (SELECT nextval(pg_get_serial_sequence('orders', 'id'))::int) AS "orderId"
  FROM cart_items c JOIN products p ON p.id = c.product_id
 WHERE c.user_id = :uid AND (SELECT pg_advisory_xact_lock(-1853189228, :uid)) IS NOT NULL
 ORDER BY c.product_id
   FOR UPDATE OF c FOR NO KEY UPDATE OF p
\gset
WITH sold AS (
  UPDATE products p SET stock = p.stock - l.quantity, updated_at = now()
    FROM unnest(ARRAY[:productId]::int[], ARRAY[:quantity]::int[])
         AS l(product_id, quantity)
   WHERE p.id = l.product_id AND p.stock >= l.quantity AND p.is_active
  RETURNING p.id AS product_id, p.name, p.price, l.quantity
), placed AS (
  INSERT INTO orders (id, user_id, status, total_price, shipping_address, idempotency_key, idempotency_fingerprint)
  VALUES (:orderId, :uid, 'pending', (SELECT sum(price * quantity) FROM sold),
          COALESCE(NULL::jsonb,
                   '{"line1":"","line2":"","city":"","state":"","postal_code":"","country":""}'::jsonb || (SELECT address FROM users WHERE id = :uid),
                   '{"line1":"","line2":"","city":"","state":"","postal_code":"","country":""}'::jsonb),
          NULL, NULL)
  RETURNING id, user_id, total_price, shipping_address, created_at, updated_at
), items AS (
  INSERT INTO order_items (order_id, product_id, product_name, unit_price, quantity)
  SELECT placed.id, sold.product_id, sold.name, sold.price, sold.quantity FROM placed, sold
  RETURNING product_id, product_name, unit_price, quantity
), history AS (
  INSERT INTO order_status_history (order_id, status, at) SELECT id, 'pending', created_at FROM placed
), noted AS (
  INSERT INTO notifications (user_id, order_id, status, previous_status, message)
  VALUES (:uid, :orderId, 'pending', NULL, 'Order #' || :orderId || ' has been placed.')
  RETURNING id, order_id, status, previous_status, message, read, created_at,
            (SELECT coalesce(max(n.id), 0) FROM notifications n WHERE n.user_id = :uid) AS previous_id
), emptied AS (
  DELETE FROM cart_items WHERE id = ANY(ARRAY[:id]::int[])
)
SELECT placed.id AS "orderId", placed.user_id AS "userId", placed.total_price::text AS "totalPrice",
       placed.shipping_address AS "shippingAddress", placed.created_at AS "createdAt",
       placed.updated_at AS "updatedAt", items.product_id AS "productId", items.product_name AS "productName",
       items.unit_price::text AS "unitPrice", (items.unit_price * items.quantity)::text AS subtotal,
       items.quantity, noted.*
  FROM placed, noted, items
 ORDER BY items.product_id;
COMMIT;
