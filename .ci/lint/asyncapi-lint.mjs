// Validates an AsyncAPI document with the official parser; exits non-zero on
// any error-severity diagnostic (warnings are printed).
import { readFileSync } from 'node:fs';
import { Parser, fromFile } from '@asyncapi/parser';

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, file).parse();
let errors = 0;
for (const d of diagnostics) {
  // severity: 0 error, 1 warning, 2 info, 3 hint
  const where = d.path && d.path.length ? d.path.join('.') : '(root)';
  const label = ['error', 'warning', 'info', 'hint'][d.severity] ?? 'note';
  if (d.severity === 0) errors++;
  if (d.severity <= 1) console.log(`${label}: ${where}: ${d.message} [${d.code}]`);
}
if (!document || errors > 0) {
  console.error(`${file}: ${errors} error(s)`);
  process.exit(1);
}
console.log(`${file}: valid AsyncAPI ${document.version()} (${document.channels().length} channels, ${document.operations().length} operations, ${document.components().messages().length} component messages)`);
void readFileSync;
