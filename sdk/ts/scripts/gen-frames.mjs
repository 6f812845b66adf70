// Generates src/gen/frames.ts — the TypeScript types of every WebSocket
// frame — from the payload schemas in spec/asyncapi.yaml with
// json-schema-to-typescript. Run by `npm run gen`; CI checks the committed
// file is fresh (`npm run check-gen`).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { compile } from "json-schema-to-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const specPath = join(here, "../../../spec/asyncapi.yaml");
const out = join(here, "../src/gen/frames.ts");

const doc = parse(readFileSync(specPath, "utf8"));
const schemas = doc.components.schemas;

// Rewrite AsyncAPI refs to JSON Schema definitions, name every schema by
// its key, and drop oneOf branches that only list required members (they
// constrain values, not shapes, and would otherwise become odd unions).
function convert(node) {
  if (Array.isArray(node)) return node.map(convert);
  if (node === null || typeof node !== "object") return node;
  const outNode = {};
  // "Any JSON value": no type at all.
  const shapeKeys = ["type", "$ref", "anyOf", "oneOf", "allOf", "const", "enum", "properties", "items"];
  if (!shapeKeys.some((k) => k in node) && Object.keys(node).every((k) => k === "description")) {
    outNode.tsType = "unknown";
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === "$ref" && typeof v === "string") {
      outNode.$ref = v.replace("#/components/schemas/", "#/definitions/");
    } else if (k === "oneOf" && v.every((b) => Object.keys(b).length === 1 && b.required)) {
      continue;
    } else {
      outNode[k] = convert(v);
    }
  }
  return outNode;
}

const definitions = {};
for (const [name, schema] of Object.entries(schemas)) {
  definitions[name] = { ...convert(schema), title: name };
}

// Which payloads the client sends and which the server sends, from the
// operations: "send" operations are client frames (their replies server
// frames), "receive" operations are server frames.
const payloadOf = (msgRef) => {
  const name = msgRef.split("/").pop();
  const channelMsg = doc.channels.ws.messages[name];
  const compRef = channelMsg.$ref.split("/").pop();
  return doc.components.messages[compRef].payload.$ref.split("/").pop();
};
const client = new Set();
const server = new Set();
for (const op of Object.values(doc.operations)) {
  const target = op.action === "send" ? client : server;
  for (const m of op.messages) target.add(payloadOf(m.$ref));
  for (const m of op.reply?.messages ?? []) server.add(payloadOf(m.$ref));
}

const root = {
  title: "Frame",
  description: "Any WebSocket frame (spec/asyncapi.yaml).",
  anyOf: [...client, ...server].map((n) => ({ $ref: `#/definitions/${n}` })),
  definitions,
};
let ts = await compile(root, "Frame", {
  bannerComment:
    "/* Generated from spec/asyncapi.yaml by scripts/gen-frames.mjs (json-schema-to-typescript). Do not edit: run `npm run gen`. */",
  unreachableDefinitions: true,
  strictIndexSignatures: true,
  format: true,
  cwd: here,
});
ts += `
/** Frames the client sends. */
export type ClientFrame = ${[...client].sort().join(" | ")};

/** Frames the server sends. */
export type ServerFrame = ${[...server].sort().join(" | ")};
`;
writeFileSync(out, ts);
console.log(`wrote ${out}: ${client.size} client and ${server.size} server frame types`);
