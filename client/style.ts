/**
 * Terminal colours that can be switched off as a whole: plain mode returns
 * every string unchanged, so piped output and NO_COLOR carry no escapes.
 */

export interface Style {
  readonly color: boolean;
  dim(s: string): string;
  bold(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  magenta(s: string): string;
  /** A stable colour per user id, so one person keeps one colour in a conversation. */
  person(id: number, s: string): string;
}

const sgr = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;
const PERSON_COLOURS = [36, 32, 33, 34, 35, 96, 92, 93, 94, 95];

export function createStyle(color: boolean): Style {
  if (!color) {
    const id = (s: string) => s;
    return {
      color,
      dim: id,
      bold: id,
      red: id,
      green: id,
      yellow: id,
      magenta: id,
      person: (_id, s) => s,
    };
  }
  return {
    color,
    dim: sgr(2, 22),
    bold: sgr(1, 22),
    red: sgr(31, 39),
    green: sgr(32, 39),
    yellow: sgr(33, 39),
    magenta: sgr(35, 39),
    person: (id, s) => sgr(PERSON_COLOURS[Math.abs(id) % PERSON_COLOURS.length]!, 39)(s),
  };
}

/**
 * Whether to colour: only a terminal gets colours, and NO_COLOR (any non-empty
 * value, see no-color.org) or `--no-color` switch them off.
 */
export function wantColor(
  flag: boolean,
  isTTY: boolean,
  env: Record<string, string | undefined>,
): boolean {
  return flag && isTTY && !env.NO_COLOR && env.TERM !== "dumb";
}
