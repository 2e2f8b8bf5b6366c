-- The trigram index on (name || ' ' || description) is partial, so the planner takes no statistics from it and
-- guesses a fixed, tiny selectivity for every ILIKE on that expression (1,600 rows where 97,000 match at a million
-- products). Statistics on the expression itself let it estimate search terms and pick between the trigram index
-- and an ordered index scan. (drizzle-kit has no schema syntax for CREATE STATISTICS, hence this custom migration.)
CREATE STATISTICS IF NOT EXISTS "products_search_text_stats" ON (("name" || ' ' || "description")) FROM "products";
