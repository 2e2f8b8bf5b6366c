DROP INDEX "products_category_idx";--> statement-breakpoint
CREATE INDEX "products_out_of_stock_idx" ON "products" USING btree ("id") WHERE "products"."is_active" AND "products"."stock" = 0;--> statement-breakpoint
CREATE INDEX "products_category_idx" ON "products" USING btree ("category_id","id");