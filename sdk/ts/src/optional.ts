/**
 * Imports a module whose name bundlers must not see: the Node-only paths
 * (the `ws` package when there is no global WebSocket, node:crypto when
 * there is no global crypto) that a browser never reaches. The name is a
 * parameter, not a literal or a constant a minifier could fold into one, so
 * esbuild, webpack and Vite leave the import to run time; the CommonJS
 * build turns it into require().
 */
export function importOptional(name: string): Promise<unknown> {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ name);
}
