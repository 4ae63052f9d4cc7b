#include "server/grpc/reflection_service.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "server/grpc/call_auth.h"

namespace hydra::server::grpc {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;
using reflection::ServerReflectionRequest;
using reflection::ServerReflectionResponse;

// `file` and every file it imports, each once, dependencies included so a
// client can build the whole descriptor from one answer.
void AddFileAndImports(const FileDescriptor* file,
                       std::set<const FileDescriptor*>* seen,
                       reflection::FileDescriptorResponse* out) {
  if (!seen->insert(file).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  out->add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileAndImports(file->dependency(i), seen, out);
  }
}

void SetError(::grpc::StatusCode code, std::string message,
              ServerReflectionResponse* response) {
  response->mutable_error_response()->set_error_code(code);
  response->mutable_error_response()->set_error_message(std::move(message));
}

// Answers each request of the stream in turn; the client's half-close ends
// the call.
class ReflectionReactor final
    : public ::grpc::ServerBidiReactor<ServerReflectionRequest,
                                       ServerReflectionResponse> {
 public:
  explicit ReflectionReactor(const ReflectionService& service)
      : service_(service) {
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(::grpc::Status::OK);
      return;
    }
    response_ = service_.Answer(request_);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(::grpc::Status(::grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  const ReflectionService& service_;
  ServerReflectionRequest request_;
  ServerReflectionResponse response_;
};

}  // namespace

ReflectionService::ReflectionService(std::vector<std::string> services,
                                     std::string api_key)
    : services_(std::move(services)), api_key_(std::move(api_key)) {}

::grpc::ServerBidiReactor<ServerReflectionRequest, ServerReflectionResponse>*
ReflectionService::ServerReflectionInfo(
    ::grpc::CallbackServerContext* context) {
  if (::grpc::Status refused = CheckApiKey(*context, api_key_); !refused.ok()) {
    class Refused final
        : public ::grpc::ServerBidiReactor<ServerReflectionRequest,
                                           ServerReflectionResponse> {
     public:
      explicit Refused(const ::grpc::Status& status) { Finish(status); }
      void OnDone() override { delete this; }
    };
    return new Refused(refused);
  }
  return new ReflectionReactor(*this);
}

ServerReflectionResponse ReflectionService::Answer(
    const ServerReflectionRequest& request) const {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  ServerReflectionResponse response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  std::set<const FileDescriptor*> seen;
  switch (request.message_request_case()) {
    case ServerReflectionRequest::kListServices:
      for (const std::string& name : services_) {
        response.mutable_list_services_response()->add_service()->set_name(
            name);
      }
      break;
    case ServerReflectionRequest::kFileByFilename:
      if (const FileDescriptor* file =
              pool->FindFileByName(request.file_by_filename())) {
        AddFileAndImports(file, &seen,
                          response.mutable_file_descriptor_response());
      } else {
        SetError(::grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no file ", request.file_by_filename()),
                 &response);
      }
      break;
    case ServerReflectionRequest::kFileContainingSymbol:
      if (const FileDescriptor* file = pool->FindFileContainingSymbol(
              request.file_containing_symbol())) {
        AddFileAndImports(file, &seen,
                          response.mutable_file_descriptor_response());
      } else {
        SetError(::grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no symbol ", request.file_containing_symbol()),
                 &response);
      }
      break;
    case ServerReflectionRequest::kFileContainingExtension: {
      const auto& ext = request.file_containing_extension();
      const auto* type = pool->FindMessageTypeByName(ext.containing_type());
      const auto* field = type == nullptr ? nullptr
                                          : pool->FindExtensionByNumber(
                                                type, ext.extension_number());
      if (field != nullptr) {
        AddFileAndImports(field->file(), &seen,
                          response.mutable_file_descriptor_response());
      } else {
        SetError(::grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no extension ", ext.extension_number(), " of ",
                              ext.containing_type()),
                 &response);
      }
      break;
    }
    case ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const auto* type =
          pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        SetError(
            ::grpc::StatusCode::NOT_FOUND,
            absl::StrCat("no type ", request.all_extension_numbers_of_type()),
            &response);
        break;
      }
      std::vector<const google::protobuf::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* out = response.mutable_all_extension_numbers_response();
      out->set_base_type_name(type->full_name());
      for (const auto* e : extensions) out->add_extension_number(e->number());
      break;
    }
    default:
      SetError(::grpc::StatusCode::INVALID_ARGUMENT,
               "message_request: set one of file_by_filename, "
               "file_containing_symbol, file_containing_extension, "
               "all_extension_numbers_of_type, list_services",
               &response);
  }
  return response;
}

}  // namespace hydra::server::grpc
