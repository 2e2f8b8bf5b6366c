DROP INDEX "products_price_idx";--> statement-breakpoint
DROP INDEX "products_category_price_idx";--> statement-breakpoint
DROP INDEX "products_name_idx";--> statement-breakpoint
DROP INDEX "products_created_idx";--> statement-breakpoint
CREATE INDEX "products_price_idx" ON "products" USING btree ("price","id","category_id","stock") WHERE "products"."is_active";--> statement-breakpoint
CREATE INDEX "products_category_price_idx" ON "products" USING btree ("category_id","price","id","stock") WHERE "products"."is_active";--> statement-breakpoint
CREATE INDEX "products_name_idx" ON "products" USING btree ("name","id","category_id","price","stock") WHERE "products"."is_active";--> statement-breakpoint
CREATE INDEX "products_created_idx" ON "products" USING btree ("created_at","id","category_id","price","stock") WHERE "products"."is_active";