/** Making users for tests: unique names, registered and logged in on their own connections. */
import type { ReplyData } from "../../server/protocol/messages.ts";
import { connect, type TestClient } from "./client.ts";

let n = 0;
const run = Math.random().toString(36).slice(2, 7);

/** A name no other test (or run) uses. */
export const uniqueName = (prefix = "u") => `${prefix}${run}${(n++).toString(36)}`;

export const PASSWORD = "correct horse";

export interface LoggedIn {
  c: TestClient;
  id: number;
  name: string;
  login: ReplyData["login"];
}

export async function registered(
  port: number,
  prefix?: string,
): Promise<{ id: number; name: string }> {
  const c = await connect(port);
  try {
    const name = uniqueName(prefix);
    const r = await c.ok("register", { name, password: PASSWORD });
    return r.user;
  } finally {
    c.close();
  }
}

export async function loggedIn(port: number, prefix?: string): Promise<LoggedIn> {
  const c = await connect(port);
  const name = uniqueName(prefix);
  const { user } = await c.ok("register", { name, password: PASSWORD });
  const login = await c.ok("login", { name, password: PASSWORD });
  return { c, id: user.id, name, login };
}

export async function logIn(
  port: number,
  who: { id: number },
): Promise<LoggedIn & { c: TestClient }> {
  const c = await connect(port);
  const login = await c.ok("login", { id: who.id, password: PASSWORD });
  return { c, id: login.user.id, name: login.user.name, login };
}
