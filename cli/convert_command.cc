#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "cli/commands.h"
#include "model/llama2c_converter.h"

ABSL_FLAG(std::string, llama2c_model, "", "llama2.c model.bin to convert");
ABSL_FLAG(std::string, tokenizer, "",
          "SentencePiece tokenizer.model of that model");
ABSL_FLAG(std::string, out, "", "Folder to write the converted model to");
ABSL_FLAG(int, bos_id, 1, "Beginning-of-sequence id to record");
ABSL_FLAG(int, eos_id, 1,
          "End-of-sequence id to record (stories15M ends a story with BOS, 1)");

namespace hydra::cli {

absl::Status RunConvert() {
  const std::string in = absl::GetFlag(FLAGS_llama2c_model);
  const std::string tok = absl::GetFlag(FLAGS_tokenizer);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (in.empty() || tok.empty() || out.empty()) {
    return absl::InvalidArgumentError(
        "--llama2c_model, --tokenizer and --out are all required");
  }
  model::Llama2cConvertOptions options;
  options.bos_token_id = absl::GetFlag(FLAGS_bos_id);
  options.eos_token_id = absl::GetFlag(FLAGS_eos_id);
  return model::ConvertLlama2c(in, tok, out, options);
}

}  // namespace hydra::cli
