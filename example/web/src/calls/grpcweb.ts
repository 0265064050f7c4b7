// The grpc-web clients (the grpc-web npm runtime, over XHR), in text mode and
// in binary mode. protoc-gen-grpc-web is a native binary that npm can't
// install, so the method descriptors its stubs would hold are written here,
// with @bufbuild/protobuf serializers: the same runtime calls the generated
// stubs make.

import { create, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { GrpcWebClientBase, MethodDescriptor, MethodType } from "grpc-web";
import type { ClientReadableStream, Metadata, RpcError, Status } from "grpc-web";
import {
  GreetRequestSchema,
  GreetResponseSchema,
  GreetStreamRequestSchema,
  GreetStreamResponseSchema,
  ResetGreetingsRequestSchema,
  ResetGreetingsResponseSchema,
  SetGreetingRequestSchema,
  SetGreetingResponseSchema,
} from "../gen/greet/v1/greet_pb";
import { codeName, decodeStatusDetails, sortedObject } from "./status";
import { blockedHint, deadlineMs } from "./types";
import type { RunOptions, RunResult } from "./types";

const service = "greet.v1.GreetService";

// grpc-web wants constructors for the message types; it never calls them.
class Opaque {}

function descriptor<I extends DescMessage, O extends DescMessage>(
  method: string,
  type: string,
  input: I,
  output: O,
): MethodDescriptor<MessageShape<I>, MessageShape<O>> {
  return new MethodDescriptor(
    `/${service}/${method}`,
    type,
    Opaque as never,
    Opaque as never,
    (m: MessageShape<I>) => toBinary(input, m),
    (b: Uint8Array) => fromBinary(output, b),
  );
}

const descriptors = {
  Greet: descriptor("Greet", MethodType.UNARY, GreetRequestSchema, GreetResponseSchema),
  SetGreeting: descriptor("SetGreeting", MethodType.UNARY, SetGreetingRequestSchema, SetGreetingResponseSchema),
  ResetGreetings: descriptor("ResetGreetings", MethodType.UNARY, ResetGreetingsRequestSchema, ResetGreetingsResponseSchema),
  GreetStream: descriptor(
    "GreetStream",
    MethodType.SERVER_STREAMING,
    GreetStreamRequestSchema,
    GreetStreamResponseSchema,
  ),
};

function clientFor(opts: RunOptions): GrpcWebClientBase {
  return new GrpcWebClientBase({
    format: opts.client === "grpcweb-binary" ? "binary" : "text",
    withCredentials: opts.credentials ?? false,
  });
}

function metadataOf(opts: RunOptions): Metadata {
  const md: Metadata = { ...(opts.headers ?? {}) };
  const ms = deadlineMs(opts);
  if (ms !== undefined) {
    // grpc-web takes the deadline as an absolute time in milliseconds.
    md["deadline"] = String(Date.now() + ms);
  }
  return md;
}

function fail(res: RunResult, code: number, message: string, md: Metadata | undefined): void {
  res.ok = false;
  res.code = codeName(code);
  res.message = message;
  const status = /http status code: (\d+)/.exec(message);
  if (status) {
    res.httpStatus = Number(status[1]);
    if (res.httpStatus === 0) {
      // XHR failed without a response: CORS (or the network) refused.
      res.message += blockedHint;
    }
  }
  res.details = decodeStatusDetails(md?.["grpc-status-details-bin"]);
  // The error's metadata repeats the headers: keep the rest as trailers.
  const trailers: Record<string, string> = {};
  for (const [name, value] of Object.entries(sortedObject(md))) {
    if (res.headers[name] !== value) {
      trailers[name] = value;
    }
  }
  res.trailers = trailers;
}

/**
 * watch records headers and trailers of a grpc-web call as they arrive. The
 * promise it returns settles when the headers are known: grpc-web emits them
 * when the XHR completes, which can be after the status of a trailer frame in
 * the body has already reached the callback.
 */
function watch<T>(stream: ClientReadableStream<T>, res: RunResult): Promise<void> {
  return new Promise((resolve) => {
    stream.on("metadata", (md: Metadata) => {
      res.headers = sortedObject(md);
      resolve();
    });
    stream.on("status", (st: Status) => {
      res.trailers = sortedObject(st.metadata);
    });
  });
}

/** headersOrTimeout waits for the headers, at most ms (the XHR may never complete). */
function headersOrTimeout(seen: Promise<void>, ms: number): Promise<void> {
  return Promise.race([seen, new Promise<void>((resolve) => setTimeout(resolve, ms))]);
}

function unary<I extends DescMessage, O extends DescMessage>(
  opts: RunOptions,
  res: RunResult,
  md: MethodDescriptor<MessageShape<I>, MessageShape<O>>,
  input: I,
  output: O,
  init: MessageInitShape<I>,
): Promise<void> {
  return new Promise((resolve) => {
    const url = opts.target.replace(/\/+$/, "") + md.getName();
    let headersSeen: Promise<void> = Promise.resolve();
    const stream = clientFor(opts).rpcCall(
      url,
      create(input, init),
      metadataOf(opts),
      md,
      (err: RpcError | null, msg: MessageShape<O>) => {
        // The callback can run before the "status" and "metadata" listeners:
        // read the trailers and headers after them.
        void headersOrTimeout(headersSeen, 1000).then(() =>
          setTimeout(() => {
            if (err) {
              fail(res, err.code, err.message, err.metadata);
            } else {
              res.ok = true;
              res.code = "ok";
              res.messages.push(toJson(output, msg));
            }
            resolve();
          }, 0),
        );
      },
    );
    headersSeen = watch(stream, res);
  });
}

function serverStream(opts: RunOptions, res: RunResult): Promise<void> {
  return new Promise((resolve) => {
    const md = descriptors.GreetStream;
    const url = opts.target.replace(/\/+$/, "") + md.getName();
    const req = create(GreetStreamRequestSchema, {
      name: opts.name ?? "",
      count: opts.count ?? 0,
      intervalMs: opts.intervalMs ?? 0,
    });
    const stream = clientFor(opts).serverStreaming(url, req, metadataOf(opts), md);
    let done = false;
    const finish = (f: () => void) => {
      if (!done) {
        done = true;
        setTimeout(() => {
          f();
          resolve();
        }, 0);
      }
    };
    void watch(stream, res);
    stream.on("data", (m) => res.messages.push(toJson(GreetStreamResponseSchema, m)));
    stream.on("error", (err: RpcError) => finish(() => fail(res, err.code, err.message, err.metadata)));
    stream.on("status", (st: Status) => {
      if (st.code !== 0) {
        finish(() => fail(res, st.code, st.details, st.metadata));
      }
    });
    stream.on("end", () =>
      finish(() => {
        res.ok = true;
        res.code = "ok";
      }),
    );
  });
}

/** runGrpcWeb makes one call with the grpc-web runtime and reports what the script saw. */
export async function runGrpcWeb(opts: RunOptions, res: RunResult): Promise<void> {
  switch (opts.method) {
    case "Greet":
      return unary(opts, res, descriptors.Greet, GreetRequestSchema, GreetResponseSchema, { name: opts.name ?? "" });
    case "SetGreeting":
      return unary(opts, res, descriptors.SetGreeting, SetGreetingRequestSchema, SetGreetingResponseSchema, {
        greeting: opts.greeting ?? "",
      });
    case "ResetGreetings":
      return unary(opts, res, descriptors.ResetGreetings, ResetGreetingsRequestSchema, ResetGreetingsResponseSchema, {});
    case "GreetStream":
      return serverStream(opts, res);
    default:
      fail(res, 12, `${opts.method} is not callable from a browser`, undefined);
      return;
  }
}
