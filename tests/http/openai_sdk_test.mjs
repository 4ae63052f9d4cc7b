// hydra's OpenAI-compatible front end through the official OpenAI Node SDK
// (tests/http/package.json), against a real `hydra serve` on stories15M:
// the model list, greedy completions equal to the golden output (whole and
// streamed), a streamed chat completion with usage, n choices, an error the
// SDK surfaces as APIError with status and param, and cancellation through
// AbortController (streamed and not) freeing every KV block.
//
//   node openai_sdk_test.mjs HYDRA MODEL_DIR DATA_DIR WORK_DIR
// Exit code 77 = skipped (no model, or the SDK is not installed).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

import { HydraServer, SKIP, check, fail, parseArgs } from "./common.mjs";

const args = parseArgs();
let OpenAI;
try {
  OpenAI = createRequire(import.meta.url)("openai");
} catch {
  console.log("SKIP: the openai npm package is not installed (scripts/setup.sh: npm ci in tests/http)");
  process.exit(SKIP);
}

const MODEL = "stories15M";
const golden = JSON.parse(fs.readFileSync(path.join(args.dataDir, "stories15M_greedy.json"), "utf8"));
const server = new HydraServer(args.hydra, args.modelDir, args.workDir, [
  `--chat_template=${path.join(args.dataDir, "simple_chat_template.jinja")}`,
]);
await server.start();
const client = new OpenAI({ baseURL: server.base + "/v1", apiKey: "unused", maxRetries: 0 });

async function post(route, body) {
  const r = await fetch(server.base + route, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (r.status !== 200) fail(`${route}: status ${r.status}: ${await r.text()}`);
  return r.json();
}

// The text of output ids after the prompt, as the server's incremental
// detokenizer produces it: Decode(prompt + output) minus Decode(prompt).
async function textAfter(promptIds, outputIds) {
  const whole = (await post("/detokenize", { tokens: [...promptIds, ...outputIds] })).prompt;
  const prompt = (await post("/detokenize", { tokens: promptIds })).prompt;
  check(whole.startsWith(prompt), "detokenized prompt is not a prefix");
  return whole.slice(prompt.length);
}

async function run(name, fn) {
  const start = Date.now();
  try {
    await fn();
  } catch (e) {
    fail(`${name}: ${e.stack || e}\n--- server log ---\n${server.output()}`);
  }
  console.log(`ok ${name} (${Date.now() - start} ms)`);
}

try {
  await run("models.list", async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    check(models.length === 1 && models[0].id === MODEL, "models: " + JSON.stringify(models));
    check(models[0].object === "model" && models[0].max_model_len === 256,
      "model entry: " + JSON.stringify(models[0]));
  });

  for (const g of golden.cases.slice(0, 2)) {
    await run(`greedy completion equals the golden output: ${g.prompt}`, async () => {
      const tokenized = await post("/tokenize", { prompt: g.prompt });
      check(JSON.stringify(tokenized.tokens) === JSON.stringify(g.prompt_ids),
        "/tokenize: " + JSON.stringify(tokenized));
      const maxTokens = 256 - g.prompt_ids.length;
      const expectedIds = g.output_ids.slice(0, maxTokens);
      const expected = await textAfter(g.prompt_ids, expectedIds);
      const c = await client.completions.create({
        model: MODEL, prompt: g.prompt, temperature: 0, max_tokens: maxTokens,
      });
      check(c.object === "text_completion" && c.choices.length === 1, JSON.stringify(c));
      check(c.choices[0].text === expected,
        `text differs:\n got ${JSON.stringify(c.choices[0].text)}\nwant ${JSON.stringify(expected)}`);
      check(c.usage.prompt_tokens === g.prompt_ids.length, "usage: " + JSON.stringify(c.usage));
      check(c.usage.completion_tokens === expectedIds.length, "usage: " + JSON.stringify(c.usage));
      check(c.usage.total_tokens === c.usage.prompt_tokens + c.usage.completion_tokens, "total");
      const reason = expectedIds.length < maxTokens ? "stop" : "length";
      check(c.choices[0].finish_reason === reason, "finish_reason " + c.choices[0].finish_reason);

      // Streamed: the deltas join to the same text, the last names the reason.
      const stream = await client.completions.create({
        model: MODEL, prompt: g.prompt, temperature: 0, max_tokens: maxTokens, stream: true,
      });
      let text = "";
      let chunks = 0;
      let finish = null;
      for await (const chunk of stream) {
        ++chunks;
        text += chunk.choices[0].text;
        if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
      }
      check(text === expected, `streamed text differs:\n got ${JSON.stringify(text)}`);
      check(chunks > 10, `only ${chunks} chunks`);
      check(finish === reason, "streamed finish_reason " + finish);
    });
  }

  await run("token ids as the prompt, n = 2 with a seed, logprobs", async () => {
    const g = golden.cases[0];
    const c = await client.completions.create({
      model: MODEL, prompt: g.prompt_ids, max_tokens: 8, n: 2, seed: 7, logprobs: 2,
    });
    check(c.choices.length === 2 && c.choices[0].index === 0 && c.choices[1].index === 1,
      JSON.stringify(c.choices));
    for (const choice of c.choices) {
      const lp = choice.logprobs;
      check(lp.tokens.length === 8 && lp.token_logprobs.length === 8 &&
        lp.top_logprobs.length === 8 && lp.text_offset.length === 8, JSON.stringify(lp));
      check(lp.tokens.join("") === choice.text, "logprob tokens join to " + lp.tokens.join(""));
      check(Object.keys(lp.top_logprobs[0]).length >= 1, "top_logprobs " + JSON.stringify(lp.top_logprobs));
    }
    check(c.usage.completion_tokens === 16, "usage " + JSON.stringify(c.usage));
    const again = await client.completions.create({
      model: MODEL, prompt: g.prompt_ids, max_tokens: 8, n: 2, seed: 7,
    });
    check(again.choices[0].text === c.choices[0].text && again.choices[1].text === c.choices[1].text,
      "the same seed gave other text");
    check(again.usage.prompt_tokens_details.cached_tokens > 0 ||
      again.usage.prompt_tokens < 16, "usage " + JSON.stringify(again.usage));
  });

  await run("warm_prefix caches a document that a completion then reuses", async () => {
    const doc = Array.from({ length: 40 }, (_, i) => 100 + 37 * i);
    const warmed = await post("/v1/warm_prefix", { model: MODEL, prompt: doc, retention: "pinned" });
    check(warmed.prompt_tokens === doc.length && warmed.cached_tokens === 32 &&
      warmed.reused_tokens >= 0, "warm_prefix " + JSON.stringify(warmed));
    const c = await client.completions.create({
      model: MODEL, prompt: doc.concat([13, 13]), max_tokens: 2, temperature: 0,
    });
    check(c.usage.prompt_tokens_details.cached_tokens === 32, "usage " + JSON.stringify(c.usage));
    const bad = await fetch(server.base + "/v1/warm_prefix", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: doc, retention: "forever" }),
    });
    const error = (await bad.json()).error;
    check(bad.status === 400 && error.param === "retention", "bad retention: " + JSON.stringify(error));
  });

  await run("streamed chat completion with include_usage", async () => {
    const messages = [
      { role: "system", content: "You tell stories." },
      { role: "user", content: [{ type: "text", text: "Tell me about a dog." }] },
    ];
    const tokenized = await post("/tokenize", { messages, add_generation_prompt: true });
    check(tokenized.tokens[0] === 1 && tokenized.tokens[1] !== 1, "one BOS: " + JSON.stringify(tokenized));
    const stream = await client.chat.completions.create({
      model: MODEL, messages, max_tokens: 20, temperature: 0, stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    check(chunks.length >= 4, `${chunks.length} chunks`);
    const first = chunks[0];
    check(first.object === "chat.completion.chunk" && first.choices[0].delta.role === "assistant",
      "first chunk " + JSON.stringify(first));
    const last = chunks[chunks.length - 1];
    check(last.choices.length === 0 && last.usage, "last chunk " + JSON.stringify(last));
    check(last.usage.prompt_tokens === tokenized.count, "usage " + JSON.stringify(last.usage));
    check(last.usage.completion_tokens === 20, "usage " + JSON.stringify(last.usage));
    const withReason = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
    check(withReason.length === 1 && withReason[0].choices[0].finish_reason === "length",
      "finish chunks " + JSON.stringify(withReason));
    const text = chunks.map((c) => (c.choices.length ? c.choices[0].delta.content || "" : "")).join("");
    const whole = await client.chat.completions.create({
      model: MODEL, messages, max_tokens: 20, temperature: 0,
    });
    check(whole.object === "chat.completion" && whole.choices[0].message.role === "assistant",
      JSON.stringify(whole));
    check(whole.choices[0].message.content === text, "streamed and whole chat differ");
  });

  await run("a bad parameter is an APIError with status 400 and param", async () => {
    for (const [body, param] of [
      [{ model: MODEL, prompt: "Hi", top_p: 1.5 }, "top_p"],
      [{ model: MODEL, prompt: "Hi", max_tokens: "ten" }, "max_tokens"],
    ]) {
      try {
        await client.completions.create(body);
        fail("no error for " + JSON.stringify(body));
      } catch (e) {
        check(e instanceof OpenAI.APIError, "not an APIError: " + e);
        check(e.status === 400 && e.param === param && e.type === "invalid_request_error",
          `status ${e.status} param ${e.param} type ${e.type}: ${e.message}`);
      }
    }
    try {
      await client.completions.create({ model: "gpt-4", prompt: "Hi" });
      fail("no error for an unknown model");
    } catch (e) {
      check(e instanceof OpenAI.NotFoundError && e.code === "model_not_found", "unknown model: " + e);
    }
  });

  await run("AbortController cancels the engine request and frees its blocks", async () => {
    const cancelledBefore = await server.metric("hydra_requests_total", 'finish_reason="cancelled",front_end="http"');
    // Streamed: abort after a few chunks.
    const controller = new AbortController();
    const stream = await client.completions.create(
      { model: MODEL, prompt: "Once upon a time", max_tokens: 240, ignore_eos: true, stream: true },
      { signal: controller.signal },
    );
    let seen = 0;
    try {
      // The SDK's stream ends quietly when aborted (or throws AbortError).
      for await (const chunk of stream) {
        if (++seen === 3) controller.abort();
      }
    } catch (e) {
      check(e.name === "AbortError" || e instanceof OpenAI.APIUserAbortError, "abort gave " + e);
    }
    check(seen < 100, `the stream went on for ${seen} chunks after the abort`);
    // Not streamed: abort while the server is still generating.
    const unary = new AbortController();
    const pending = client.completions.create(
      { model: MODEL, prompt: "Lily and Tom", max_tokens: 240, ignore_eos: true },
      { signal: unary.signal },
    );
    setTimeout(() => unary.abort(), 100);
    try {
      await pending;
      fail("the request was not aborted");
    } catch (e) {
      check(e.name === "AbortError" || e instanceof OpenAI.APIUserAbortError, "abort gave " + e);
    }
    await server.waitNoBlocksUsed("after the aborts");
    const cancelled = await server.metric("hydra_requests_total", 'finish_reason="cancelled",front_end="http"');
    check(cancelled - cancelledBefore === 2, `cancelled went ${cancelledBefore} -> ${cancelled}`);
  });
} finally {
  if (server.exited === null) await server.stop();
}
console.log("PASS");
