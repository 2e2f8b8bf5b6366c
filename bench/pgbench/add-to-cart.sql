-- pgbench: adding to the cart, as the service does it. MUST mirror the statement src/cart/service.ts (ADD_TO_CART)
-- sends, a named prepared statement (pgbench -M prepared): update this file whenever that statement changes, or the
-- bench's `limit` stops being the service's limit.
-- bench/limit.ts runs it after setting :uid (client N is buyer N) and :pid (the product, picked as bench/wrk.lua
-- picks it), alone for the add-to-cart limit and followed by place-order.sql for the order limit.
WITH added AS (
  INSERT INTO cart_items (user_id, product_id, quantity)
  SELECT :uid::int, p.id, 1::int FROM products p
  WHERE p.id = :pid::int AND p.is_active AND p.stock >= 1::int
  ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = cart_items.quantity + EXCLUDED.quantity
  WHERE cart_items.quantity::bigint + EXCLUDED.quantity
        <= (SELECT stock FROM products WHERE id = EXCLUDED.product_id)
  RETURNING id, product_id, quantity
), lines AS (
  SELECT id, product_id, quantity FROM cart_items
   WHERE user_id = :uid::int AND id NOT IN (SELECT id FROM added)
  UNION ALL
  SELECT id, product_id, quantity FROM added
)
SELECT l.id, l.quantity, p.id AS "productId", p.name, p.price::text AS price, p.stock,
       p.is_active AS "isActive", p.category_id AS "categoryId", (p.price * l.quantity)::text AS subtotal,
       (sum(p.price * l.quantity) OVER ())::text AS total, EXISTS (SELECT 1 FROM added) AS written
  FROM lines l JOIN products p ON p.id = l.product_id
 ORDER BY l.id;
