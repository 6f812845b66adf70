/** A token, or a function returning a fresh one (called per request, dial and refresh). */
export type TokenSource = string | (() => string | Promise<string>);

export async function resolveToken(t: TokenSource | undefined): Promise<string | undefined> {
  if (t === undefined) return undefined;
  return typeof t === "string" ? t : await t();
}
