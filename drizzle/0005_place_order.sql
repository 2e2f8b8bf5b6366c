-- Placing an order as ONE call, hence one round trip and one autocommit statement: place_order (src/orders/placing.ts),
-- with the notifications' lock and insert as functions of their own that the status changes call too
-- (src/notifications/service.ts), so each is written once. Statements inside a function each see everything committed
-- before they start (READ COMMITTED takes a snapshot per statement), so what is read after a lock wait is current, as
-- it was when each was a statement of its own.
--
-- Every statement below finds its rows through a unique index by equality, or walks one with LIMIT 1: no plan that
-- statistics could turn into a scan of a table, however churned and however long since its last ANALYZE.

-- The lock that serializes one user's notification writers (see recordStatusChange). The first key is negative, so
-- it never meets a lock keyed by a user id first.
CREATE FUNCTION lock_user_notifications(p_user integer) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$ BEGIN PERFORM pg_advisory_xact_lock(-1853189228, p_user); END $$;
--> statement-breakpoint

-- The one way a notification is stored (see recordStatusChange): its message is `p_template` with the order id for
-- %s; `previous_id` is the user's notification before it (0 for none), read in the insert's snapshot. PL/pgSQL, not
-- SQL, for its plans kept from call to call.
CREATE FUNCTION insert_notification(p_user integer, p_order integer, p_status varchar, p_previous varchar, p_template text)
RETURNS TABLE (id bigint, order_id integer, status varchar, previous_status varchar, message text, read boolean,
               created_at timestamptz, previous_id bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN QUERY
  INSERT INTO notifications AS n (user_id, order_id, status, previous_status, message)
  VALUES (p_user, p_order, p_status, p_previous, format(p_template, p_order))
  RETURNING n.id, n.order_id, n.status, n.previous_status, n.message, n.read, n.created_at,
            (SELECT coalesce(max(o.id), 0) FROM notifications o WHERE o.user_id = p_user);
END
$$;
--> statement-breakpoint

-- Places the cart of p_user as one order, all or nothing, and answers what happened as JSON ("outcome"):
-- - existing: p_key already placed an order (its id, its fingerprint and this cart's lines fingerprint, null for an
--   empty cart): nothing written, the caller decides replay or conflict;
-- - empty; short (every line, to name the short ones; it outranks mispredicted); nothing written;
-- - mispredicted: the caller marked the cache for p_products, and p_sellouts as the categories where a product may
--   sell out, before calling (cache scopes must be marked before the commit), and the cart or its stock says
--   otherwise: nothing written, the lines are returned to predict again;
-- - placed: the order, its items and the stored notification.
-- Locks, in this order, everywhere: the Idempotency-Key's, the user's notification lock (a cancellation takes it before
-- its products too), then each cart line with its product in ascending product id (no two placements deadlock).
CREATE FUNCTION place_order(p_user integer, p_address jsonb, p_key varchar, p_address_print text,
                            p_products integer[], p_sellouts integer[], p_template text)
RETURNS json
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  empty_address constant jsonb := '{"line1":"","line2":"","city":"","state":"","postal_code":"","country":""}';
  existing orders;
  placed orders;
  note record;
  line record;
  product record;
  last_product integer := 0;
  ids integer[] := '{}';
  product_ids integer[] := '{}';
  quantities integer[] := '{}';
  stocks integer[] := '{}';
  active boolean[] := '{}';
  category_ids integer[] := '{}';
  names varchar[] := '{}';
  prices numeric[] := '{}';
  total numeric := 0;
  lines_print text;
  outcome text;
  i integer;
BEGIN
  IF p_key IS NOT NULL THEN
    -- Two requests with one key queue here; the second then finds the first's order.
    PERFORM pg_advisory_xact_lock(p_user, hashtext(p_key));
    SELECT * INTO existing FROM orders o WHERE o.user_id = p_user AND o.idempotency_key = p_key;
  END IF;
  PERFORM lock_user_notifications(p_user);

  -- One line at a time, each the next by product id: LIMIT 1 down the (user_id, product_id) index, whatever the
  -- statistics say (any other plan reads the user's every line first). A line deleted while we waited for its lock is
  -- passed over for the next (FOR UPDATE under LIMIT fetches on).
  LOOP
    SELECT c.id, c.product_id, c.quantity INTO line FROM cart_items c
     WHERE c.user_id = p_user AND c.product_id > last_product
     ORDER BY c.product_id LIMIT 1
       FOR UPDATE;
    EXIT WHEN NOT FOUND;
    -- The lock an UPDATE takes: carts and orders referencing the product (foreign key checks) are not blocked.
    SELECT p.stock, p.is_active, p.category_id, p.name, p.price INTO product FROM products p
     WHERE p.id = line.product_id
       FOR NO KEY UPDATE;
    last_product := line.product_id;
    ids := ids || line.id;
    product_ids := product_ids || line.product_id;
    quantities := quantities || line.quantity;
    stocks := stocks || product.stock;
    active := active || product.is_active;
    category_ids := category_ids || product.category_id;
    names := names || product.name;
    prices := prices || product.price;
    total := total + product.price * line.quantity;
  END LOOP;

  IF p_key IS NOT NULL AND cardinality(ids) > 0 THEN
    lines_print := left(encode(sha256(convert_to(
      (SELECT string_agg(l.product_id || 'x' || l.quantity, ',' ORDER BY l.product_id) FROM unnest(product_ids, quantities) AS l(product_id, quantity)),
      'UTF8')), 'hex'), 32);
  END IF;
  IF existing.id IS NOT NULL THEN
    RETURN json_build_object('outcome', 'existing', 'order_id', existing.id,
                             'fingerprint', existing.idempotency_fingerprint, 'lines_print', lines_print);
  END IF;
  IF cardinality(ids) = 0 THEN
    RETURN json_build_object('outcome', 'empty');
  END IF;
  FOR i IN 1 .. cardinality(ids) LOOP
    IF NOT active[i] OR stocks[i] < quantities[i] THEN
      outcome := 'short';
    ELSIF outcome IS NULL AND (NOT product_ids[i] = ANY(p_products) OR (stocks[i] = quantities[i] AND NOT category_ids[i] = ANY(p_sellouts))) THEN
      outcome := 'mispredicted';
    END IF;
  END LOOP;
  IF outcome IS NOT NULL THEN
    RETURN json_build_object('outcome', outcome, 'lines', (
      SELECT json_agg(json_build_object('product_id', l.product_id, 'quantity', l.quantity, 'stock', l.stock,
                                        'is_active', l.is_active, 'category_id', l.category_id) ORDER BY l.product_id)
        FROM unnest(product_ids, quantities, stocks, active, category_ids) AS l(product_id, quantity, stock, is_active, category_id)));
  END IF;

  INSERT INTO orders (user_id, status, total_price, shipping_address, idempotency_key, idempotency_fingerprint)
  VALUES (p_user, 'pending', total,
          COALESCE(p_address, empty_address || (SELECT u.address FROM users u WHERE u.id = p_user), empty_address),
          p_key, CASE WHEN p_key IS NOT NULL THEN lines_print || '.' || p_address_print END)
  RETURNING * INTO placed;
  FOR i IN 1 .. cardinality(ids) LOOP
    -- Still conditional, as a belt: the row is locked and was checked above.
    UPDATE products p SET stock = p.stock - quantities[i], updated_at = now()
     WHERE p.id = product_ids[i] AND p.stock >= quantities[i] AND p.is_active;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'order %: product % not sold', placed.id, product_ids[i];
    END IF;
    DELETE FROM cart_items c WHERE c.id = ids[i];
  END LOOP;
  INSERT INTO order_items (order_id, product_id, product_name, unit_price, quantity)
  SELECT placed.id, l.product_id, l.name, l.price, l.quantity
    FROM unnest(product_ids, names, prices, quantities) AS l(product_id, name, price, quantity);
  INSERT INTO order_status_history (order_id, status, at) VALUES (placed.id, 'pending', placed.created_at);
  SELECT * INTO note FROM insert_notification(p_user, placed.id, 'pending', NULL, p_template);

  RETURN json_build_object(
    'outcome', 'placed',
    'order', json_build_object('id', placed.id, 'user_id', placed.user_id, 'total_price', placed.total_price::text,
                               'shipping_address', placed.shipping_address, 'created_at', placed.created_at,
                               'updated_at', placed.updated_at, 'idempotency_fingerprint', placed.idempotency_fingerprint),
    'items', (SELECT json_agg(json_build_object('product_id', l.product_id, 'product_name', l.name,
                                                'unit_price', l.price::text, 'quantity', l.quantity,
                                                'subtotal', (l.price * l.quantity)::text) ORDER BY l.product_id)
                FROM unnest(product_ids, names, prices, quantities) AS l(product_id, name, price, quantity)),
    'notification', row_to_json(note));
END
$$;
