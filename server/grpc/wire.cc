#include "server/grpc/wire.h"

#include <algorithm>
#include <cstdio>

#include "google/protobuf/stubs/logging.h"

namespace hydra::server::grpc {
namespace {

void FilteredLog(google::protobuf::LogLevel level, const char* filename,
                 int line, const std::string& message) {
  if (message.find("invalid UTF-8 data") != std::string::npos) return;
  static constexpr const char* kLevels[] = {"INFO", "WARNING", "ERROR",
                                            "FATAL"};
  std::fprintf(stderr, "[libprotobuf %s %s:%d] %s\n",
               kLevels[std::min<int>(level, 3)], filename, line,
               message.c_str());
  std::fflush(stderr);
}

}  // namespace

void QuietProtobufUtf8Errors() {
  google::protobuf::SetLogHandler(&FilteredLog);
}

}  // namespace hydra::server::grpc
