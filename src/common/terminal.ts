// What the network says, printed to an operator's terminal: alert messages, install errors, ticket
// summaries and relays' words come from devices that may be hostile. A terminal obeys escape
// sequences (ESC, and the 8-bit C1 controls some read as ESC [): one could retitle the window,
// write the clipboard, or a carriage return or a bidi override could hide or reorder what is shown.
// They are printed as escapes instead, so the operator sees them and the terminal obeys nothing.

/**
 * Controls a terminal may obey, but tab and newline; DEL; C1; the line and paragraph separators
 * (a line break to some readers); bidi marks, embeddings, overrides and isolates.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const OBEYED = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Human output: every control a terminal would obey shown as `\uXXXX`; lines and tabs kept. */
export const terminalSafe = (s: string) => s.replace(OBEYED, escaped);

/** One table cell: also its line breaks and tabs, so a value cannot make rows or columns of its own. */
export const cellSafe = (s: string) => terminalSafe(s).replace(/[\n\t]/g, escaped);

/**
 * A device's text of several lines under a label of ours (a message): each line after the first
 * begins with `lead`, so that none can pass for a line of ours (a step, a resolve link).
 */
export const quotedLines = (s: string, lead: string) => terminalSafe(s).split('\n').join(`\n${lead}`);

/**
 * JSON output: JSON.stringify already escapes U+0000–U+001F; the rest of `OBEYED` is written as
 * the same `\uXXXX` escapes (a JSON reader gets the same string).
 */
export const jsonSafe = (json: string) => json.replace(OBEYED, escaped);
