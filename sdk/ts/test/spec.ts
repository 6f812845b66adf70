// Validates frames against the payload schemas of spec/asyncapi.yaml, the
// same schemas src/gen/frames.ts is generated from.
import { Ajv } from "ajv";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const specPath = join(dirname(fileURLToPath(import.meta.url)), "../../../../spec/asyncapi.yaml");
const doc = parse(readFileSync(specPath, "utf8")) as { components: { schemas: Record<string, Record<string, unknown>> } };

function rewrite(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewrite);
  if (node === null || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === "$ref" && typeof v === "string" ? v.replace("#/components/schemas/", "asyncapi#/definitions/") : rewrite(v);
  }
  return out;
}

const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema({ $id: "asyncapi", definitions: rewrite(doc.components.schemas) as object });

/** Frame type → schema name, from each payload schema's `type` const. */
const byType = new Map<string, string>();
for (const [name, s] of Object.entries(doc.components.schemas)) {
  const t = (s.properties as Record<string, { const?: string }> | undefined)?.type?.const;
  if (t) byType.set(t, name);
}

/** Returns why a frame violates spec/asyncapi.yaml, or undefined. */
export function frameViolation(text: string): string | undefined {
  let f: { type?: string };
  try {
    f = JSON.parse(text);
  } catch {
    return "not JSON";
  }
  const name = byType.get(f.type ?? "");
  if (!name) return `unknown frame type ${f.type}`;
  const validate = ajv.getSchema(`asyncapi#/definitions/${name}`)!;
  return validate(f) ? undefined : ajv.errorsText(validate.errors);
}

export const frameTypes = [...byType.keys()];
