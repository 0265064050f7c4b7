// Status codes and error details, shared by the connect-web and grpc-web
// clients.

import { fromBinary, toJson } from "@bufbuild/protobuf";
import { BinaryReader, WireType, base64Decode, base64Encode } from "@bufbuild/protobuf/wire";
import { GreetErrorDetailSchema } from "../gen/greet/v1/greet_pb";
import type { ErrorDetail } from "./types";

const codeNames = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

/** codeName turns a numeric gRPC code into its Connect name ("invalid_argument"). */
export function codeName(code: number): string {
  return codeNames[code] ?? `code_${code}`;
}

/**
 * decodeDetail turns one packed detail (type name and bytes) into JSON: the
 * page knows greet.v1.GreetErrorDetail; others stay base64.
 */
export function decodeDetail(type: string, value: Uint8Array): ErrorDetail {
  if (type === GreetErrorDetailSchema.typeName) {
    return { type, value: toJson(GreetErrorDetailSchema, fromBinary(GreetErrorDetailSchema, value)) };
  }
  return { type, value: base64Encode(value) };
}

/**
 * decodeStatusDetails reads the details of a grpc-status-details-bin value (a
 * base64 google.rpc.Status) with the protobuf wire reader: field 3 holds
 * google.protobuf.Any values whose field 1 is the type URL and field 2 the
 * bytes. A malformed value gives one detail of type "malformed".
 */
export function decodeStatusDetails(bin: string | undefined): ErrorDetail[] {
  if (!bin) {
    return [];
  }
  try {
    const details: ErrorDetail[] = [];
    const status = new BinaryReader(base64Decode(bin));
    while (status.pos < status.len) {
      const [field, wireType] = status.tag();
      if (field !== 3 || wireType !== WireType.LengthDelimited) {
        status.skip(wireType);
        continue;
      }
      const any = new BinaryReader(status.bytes());
      let typeUrl = "";
      let value: Uint8Array = new Uint8Array(0);
      while (any.pos < any.len) {
        const [f, wt] = any.tag();
        if (f === 1 && wt === WireType.LengthDelimited) {
          typeUrl = any.string();
        } else if (f === 2 && wt === WireType.LengthDelimited) {
          value = any.bytes();
        } else {
          any.skip(wt);
        }
      }
      details.push(decodeDetail(typeUrl.slice(typeUrl.lastIndexOf("/") + 1), value));
    }
    return details;
  } catch (e) {
    return [{ type: "malformed", value: String(e) }];
  }
}

/** headersObject copies a Headers into a plain object with sorted, lowercased names. */
export function headersObject(h: Headers | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) {
    return out;
  }
  const names: string[] = [];
  h.forEach((_, name) => names.push(name.toLowerCase()));
  for (const name of names.sort()) {
    out[name] = h.get(name) ?? "";
  }
  return out;
}

/** sortedObject copies a string map with lowercased names in sorted order. */
export function sortedObject(m: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!m) {
    return out;
  }
  for (const name of Object.keys(m).sort()) {
    out[name.toLowerCase()] = m[name];
  }
  return out;
}
