// Protobuf messages to and from the bytes of a call. The service takes its
// requests as raw bytes and parses them itself, so a malformed request gets
// INVALID_ARGUMENT with a message saying why, where gRPC's own parsing would
// answer with an empty status of its choosing.
#ifndef HYDRA_SERVER_GRPC_WIRE_H_
#define HYDRA_SERVER_GRPC_WIRE_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/status.h"

namespace hydra::server::grpc {

// Parses `bytes` into `message`, or says which message could not be read.
// Proto3 refuses a `string` field that is not UTF-8 (request_id, text) at
// parse time, so that case is named too.
inline ::grpc::Status ParseRequest(const ::grpc::ByteBuffer& bytes,
                                   google::protobuf::Message* message) {
  ::grpc::ByteBuffer copy(bytes);  // a reference, not a copy of the bytes
  ::grpc::ProtoBufferReader reader(&copy);
  if (!reader.status().ok() || !message->ParseFromZeroCopyStream(&reader)) {
    return ::grpc::Status(
        ::grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("the request could not be parsed as ",
                     message->GetDescriptor()->full_name(),
                     ": truncated or malformed protobuf, or a string field "
                     "(such as request_id or text) that is not valid UTF-8"));
  }
  return ::grpc::Status::OK;
}

inline ::grpc::ByteBuffer Serialize(const google::protobuf::Message& message) {
  ::grpc::Slice slice(message.SerializeAsString());
  return ::grpc::ByteBuffer(&slice, 1);
}

// Protobuf logs an ERROR line for every string field that is not UTF-8; such
// a request is answered with INVALID_ARGUMENT, so a client sending them must
// not fill the server's log. Installs a log handler (process-wide, as
// protobuf's logging is) that drops those lines and prints the rest as
// protobuf would.
void QuietProtobufUtf8Errors();

}  // namespace hydra::server::grpc

#endif  // HYDRA_SERVER_GRPC_WIRE_H_
