/**
 * Compile-time proof that both dialects' schemas infer the same row types, so
 * the two Store adapters hand the services identical shapes. `tsc` fails
 * (TS2344) as soon as one column differs in type or nullability.
 */
import type * as my from "./mysql/schema.ts";
import type * as lite from "./sqlite/schema.ts";

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;

export type Parity = [
  Assert<Equal<typeof my.user.$inferSelect, typeof lite.user.$inferSelect>>,
  Assert<Equal<typeof my.friend.$inferSelect, typeof lite.friend.$inferSelect>>,
  Assert<Equal<typeof my.allgroup.$inferSelect, typeof lite.allgroup.$inferSelect>>,
  Assert<Equal<typeof my.groupuser.$inferSelect, typeof lite.groupuser.$inferSelect>>,
  Assert<Equal<typeof my.offlinemessage.$inferSelect, typeof lite.offlinemessage.$inferSelect>>,
  Assert<Equal<typeof my.setting.$inferSelect, typeof lite.setting.$inferSelect>>,
  Assert<Equal<typeof my.user.$inferInsert, typeof lite.user.$inferInsert>>,
  Assert<Equal<typeof my.offlinemessage.$inferInsert, typeof lite.offlinemessage.$inferInsert>>,
];
