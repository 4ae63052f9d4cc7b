// Renders every template of tests/data/chat_templates with every
// conversation of conversations.json, with and without
// add_generation_prompt, and every snippet of snippets.json (small
// templates, one construct each, with their variables), using
// @huggingface/jinja (the reference renderer, pinned by
// package-lock.json), and writes the outputs (or the errors) as JSON for
// reference_test.cc to compare hydra's renderer with.
//
//   node render_reference.js DATA_DIR OUT.json
"use strict";
const fs = require("fs");
const path = require("path");
const { Template } = require("@huggingface/jinja");

const [dataDir, outFile] = process.argv.slice(2);
if (!dataDir || !outFile) {
  console.error("usage: node render_reference.js DATA_DIR OUT.json");
  process.exit(2);
}
const readJson = (file) => JSON.parse(fs.readFileSync(path.join(dataDir, file), "utf8"));
const { conversations } = readJson("conversations.json");
const names = fs
  .readdirSync(dataDir)
  .filter((f) => f.endsWith(".jinja"))
  .map((f) => f.slice(0, -".jinja".length))
  .sort();

const message = (e) => String(e && e.message !== undefined ? e.message : e);
const cases = [];
for (const name of names) {
  const source = fs.readFileSync(path.join(dataDir, `${name}.jinja`), "utf8");
  const tokens = readJson(`${name}.json`);
  let template = null;
  let parseError = null;
  try {
    template = new Template(source);
  } catch (e) {
    parseError = message(e);
  }
  for (const conversation of conversations) {
    for (const addGenerationPrompt of [false, true]) {
      // The variables in the order hydra's ChatTemplate::Render sets them;
      // a token that is null stays undefined, as in transformers.
      const variables = { messages: conversation.messages };
      for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
        if (tokens[key] !== undefined && tokens[key] !== null) variables[key] = tokens[key];
      }
      variables.add_generation_prompt = addGenerationPrompt;
      Object.assign(variables, conversation.extra || {});
      let output = null;
      let error = parseError;
      if (template !== null) {
        try {
          output = template.render(variables);
        } catch (e) {
          error = message(e);
        }
      }
      cases.push({
        template: name,
        conversation: conversation.name,
        add_generation_prompt: addGenerationPrompt,
        output,
        error,
      });
    }
  }
}
const snippets = readJson("snippets.json").snippets.map(({ name, template, context }) => {
  try {
    return { name, output: new Template(template).render(context), error: null };
  } catch (e) {
    return { name, output: null, error: message(e) };
  }
});

const version = JSON.parse(
  fs.readFileSync(require.resolve("@huggingface/jinja").replace(/dist[\\/]index\.cjs$/, "package.json"), "utf8"),
).version;
fs.writeFileSync(outFile, JSON.stringify({ reference: `@huggingface/jinja@${version}`, cases, snippets }, null, 1));
const failed = cases.filter((c) => c.error !== null).length;
console.log(
  `@huggingface/jinja@${version}: ${cases.length} cases (${names.length} templates), ${failed} raised an error; ` +
    `${snippets.length} snippets, ${snippets.filter((c) => c.error !== null).length} raised an error`,
);
