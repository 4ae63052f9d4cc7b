// Writes the chat templates that @huggingface/ollama-utils ships (the
// "gguf" field of OLLAMA_CHAT_TEMPLATE_MAPPING in its
// src/chat-template-automap.ts: each model's template as its GGUF file
// embeds it, ~95 distinct ones) into OUT_DIR as
// <model>.jinja, with generic BOS/EOS tokens, beside a copy of DATA_DIR's
// conversations.json and snippets.json: a second, wider data set for
// render_reference.js and reference_test.cc.
//
//   node extract_ollama_templates.js DATA_DIR OUT_DIR
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

// The package does not export the mapping; its TypeScript source is one
// array literal, which runs as JavaScript once the import and the type
// annotation are gone.
function loadMapping() {
  const dist = require.resolve("@huggingface/ollama-utils");
  const source = fs.readFileSync(
    path.join(path.dirname(dist), "..", "src", "chat-template-automap.ts"),
    "utf8",
  );
  const script = source
    .replace(/^import .*$/gm, "")
    .replace(
      /export const OLLAMA_CHAT_TEMPLATE_MAPPING\s*:\s*OllamaChatTemplateMapEntry\[\]\s*=/,
      "mapping =",
    );
  const context = { mapping: null };
  vm.runInNewContext(script, context);
  if (!Array.isArray(context.mapping)) throw new Error("no OLLAMA_CHAT_TEMPLATE_MAPPING found");
  return context.mapping;
}

const [dataDir, outDir] = process.argv.slice(2);
if (!dataDir || !outDir) {
  console.error("usage: node extract_ollama_templates.js DATA_DIR OUT_DIR");
  process.exit(2);
}
fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
for (const file of ["conversations.json", "snippets.json"]) {
  fs.copyFileSync(path.join(dataDir, file), path.join(outDir, file));
}
const seen = new Set();
for (const { model, gguf } of loadMapping()) {
  if (!gguf || seen.has(gguf)) continue;
  seen.add(gguf);
  // Some models have several templates (library/qwq:32b has three).
  const base = model.replace(/[^A-Za-z0-9._-]/g, "_");
  let name = base;
  for (let n = 2; fs.existsSync(path.join(outDir, `${name}.jinja`)); ++n) name = `${base}.${n}`;
  fs.writeFileSync(path.join(outDir, `${name}.jinja`), gguf);
  fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify({ bos_token: "<s>", eos_token: "</s>" }));
}
console.log(`${seen.size} templates from @huggingface/ollama-utils in ${outDir}`);
