/**
 * gRPC server reflection (`grpc.reflection.v1` and `v1alpha`, which are wire-identical, so both
 * are served with the v1 messages): list services, file by name, file containing a symbol or an
 * extension, extension numbers of a type. File answers carry the file and its transitive
 * dependencies, as grpcurl and grpc_cli expect.
 */
import { create, toBinary, type DescFile, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import { Code } from "./status.ts";

export const REFLECTION_V1 = "grpc.reflection.v1.ServerReflection";
export const REFLECTION_V1ALPHA = "grpc.reflection.v1alpha.ServerReflection";

export interface Reflector {
  answer(req: ServerReflectionRequest): ServerReflectionResponse;
}

/** `files`: the files declaring the served services; `services`: names to list. */
export function createReflector(files: readonly DescFile[], services: readonly string[]): Reflector {
  const byName = new Map<string, DescFile>();
  const bySymbol = new Map<string, DescFile>();
  const extensions = new Map<string, Map<number, DescFile>>();
  const encoded = new Map<DescFile, Uint8Array>();

  const addMessage = (m: DescMessage, f: DescFile): void => {
    bySymbol.set(m.typeName, f);
    for (const field of m.fields) bySymbol.set(`${m.typeName}.${field.name}`, f);
    for (const n of m.nestedMessages) addMessage(n, f);
    for (const e of m.nestedEnums) bySymbol.set(e.typeName, f);
    for (const x of m.nestedExtensions) addExt(x.extendee.typeName, x.number, x.typeName, f);
  };
  const addExt = (extendee: string, num: number, name: string, f: DescFile): void => {
    bySymbol.set(name, f);
    let m = extensions.get(extendee);
    if (!m) extensions.set(extendee, (m = new Map<number, DescFile>()));
    m.set(num, f);
  };
  const addFile = (f: DescFile): void => {
    if (byName.has(f.name + ".proto")) return;
    byName.set(f.name + ".proto", f);
    for (const d of f.dependencies) addFile(d);
    for (const m of f.messages) addMessage(m, f);
    for (const e of f.enums) bySymbol.set(e.typeName, f);
    for (const s of f.services) {
      bySymbol.set(s.typeName, f);
      for (const m of s.methods) bySymbol.set(`${s.typeName}.${m.name}`, f);
    }
    for (const x of f.extensions) addExt(x.extendee.typeName, x.number, x.typeName, f);
  };
  for (const f of files) addFile(f);

  const bytesOf = (f: DescFile): Uint8Array => {
    let b = encoded.get(f);
    if (!b) encoded.set(f, (b = toBinary(FileDescriptorProtoSchema, f.proto)));
    return b;
  };
  /** The file first, then its transitive dependencies, each once. */
  const withDeps = (f: DescFile): Uint8Array[] => {
    const seen = new Set<DescFile>();
    const order: DescFile[] = [];
    const visit = (x: DescFile): void => {
      if (seen.has(x)) return;
      seen.add(x);
      order.push(x);
      for (const d of x.dependencies) visit(d);
    };
    visit(f);
    return order.map(bytesOf);
  };

  const error = (code: Code, message: string): ServerReflectionResponse["messageResponse"] => ({
    case: "errorResponse",
    value: { $typeName: "grpc.reflection.v1.ErrorResponse", errorCode: code, errorMessage: message },
  });
  const files_ = (list: Uint8Array[]): ServerReflectionResponse["messageResponse"] => ({
    case: "fileDescriptorResponse",
    value: { $typeName: "grpc.reflection.v1.FileDescriptorResponse", fileDescriptorProto: list },
  });

  return {
    answer(req) {
      let messageResponse: ServerReflectionResponse["messageResponse"];
      const q = req.messageRequest;
      switch (q.case) {
        case "listServices":
          messageResponse = {
            case: "listServicesResponse",
            value: {
              $typeName: "grpc.reflection.v1.ListServiceResponse",
              service: services.map((name) => ({ $typeName: "grpc.reflection.v1.ServiceResponse", name })),
            },
          };
          break;
        case "fileByFilename": {
          const f = byName.get(q.value);
          messageResponse = f ? files_(withDeps(f)) : error(Code.NOT_FOUND, `file "${q.value}" not found`);
          break;
        }
        case "fileContainingSymbol": {
          const f = bySymbol.get(q.value.replace(/^\./, ""));
          messageResponse = f ? files_(withDeps(f)) : error(Code.NOT_FOUND, `symbol "${q.value}" not found`);
          break;
        }
        case "fileContainingExtension": {
          const f = extensions.get(q.value.containingType)?.get(q.value.extensionNumber);
          messageResponse = f
            ? files_(withDeps(f))
            : error(Code.NOT_FOUND, `extension ${q.value.extensionNumber} of "${q.value.containingType}" not found`);
          break;
        }
        case "allExtensionNumbersOfType": {
          const type = q.value;
          if (!bySymbol.has(type)) {
            messageResponse = error(Code.NOT_FOUND, `type "${type}" not found`);
          } else {
            messageResponse = {
              case: "allExtensionNumbersResponse",
              value: {
                $typeName: "grpc.reflection.v1.ExtensionNumberResponse",
                baseTypeName: type,
                extensionNumber: [...(extensions.get(type)?.keys() ?? [])].sort((a, b) => a - b),
              },
            };
          }
          break;
        }
        default:
          messageResponse = error(Code.INVALID_ARGUMENT, "empty or unknown reflection request");
      }
      return create(ServerReflectionResponseSchema, {
        validHost: req.host,
        originalRequest: req,
        messageResponse,
      });
    },
  };
}
