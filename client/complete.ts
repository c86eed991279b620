/**
 * Tab completion as a pure function in readline's completer shape: command
 * names first, then the names of friends, known people and groups for the
 * argument that takes them, in both the words and the colon syntax.
 */
import { COMMANDS, type CommandName, lookupCommand, quoteName } from "./commands.ts";

export interface CompletionContext {
  loggedIn: boolean;
  /** Names of users this client knows (friends, group members, senders). */
  users: string[];
  /** Names of the groups the user is in. */
  groups: string[];
}

/** [candidates, the text they replace], as node:readline's completer returns. */
export type Completion = [string[], string];

function commandNames(ctx: CompletionContext): string[] {
  return (Object.keys(COMMANDS) as CommandName[]).filter((n) => {
    const when = COMMANDS[n].when;
    return when === "any" || (when === "in") === ctx.loggedIn;
  });
}

function candidatesFor(name: CommandName, ctx: CompletionContext): string[] {
  const first = COMMANDS[name].args[0];
  if (!first) return [];
  switch (first.kind) {
    case "user":
    case "who":
      return ctx.users.map(quoteName);
    case "group":
      return ctx.groups.map(quoteName);
    case "topic":
      return Object.keys(COMMANDS);
    default:
      return [];
  }
}

const uniqueSorted = (xs: string[]) => [...new Set(xs)].sort();

export function complete(line: string, ctx: CompletionContext): Completion {
  // The command word itself.
  if (/^\S*$/.test(line) && !line.includes(":")) {
    const hits = commandNames(ctx).filter((n) => n.startsWith(line.toLowerCase()));
    return [hits.length === 1 ? [`${hits[0]} `] : hits, line];
  }
  // The first argument, after a space or a colon; later arguments are free text.
  const m = /^([^\s:]+)(\s+|:)(\S*)$/.exec(line);
  if (!m) return [[], line];
  const [, word, sep, partial] = m as unknown as [string, string, string, string];
  const name = lookupCommand(word);
  if (!name) return [[], partial];
  const hits = uniqueSorted(candidatesFor(name, ctx)).filter((c) => c.startsWith(partial));
  if (hits.length !== 1) return [hits, partial];
  const more = COMMANDS[name].args.length > 1;
  return [[`${hits[0]}${more ? (sep === ":" ? ":" : " ") : ""}`], partial];
}
