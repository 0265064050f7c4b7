// The @improbable-eng/grpc-web client with its WebsocketTransport: the one
// browser client that streams request bodies (GreetMany, Chat), served by
// `corsgate serve --websockets` as grpcwebproxy's --use_websockets served it.
//
// The library wants google-protobuf-style message classes (new(),
// serializeBinary(), static deserializeBinary()). Rather than a second code
// generator (protoc-gen-js is a native binary npm can't install here) or a
// hand-written wire encoder, messageClass wraps the protobuf-es messages the
// page already generates: the bytes are @bufbuild/protobuf's, and every
// other line of the call is the real improbable client library.

import { create, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { grpc } from "@improbable-eng/grpc-web";
import {
  ChatRequestSchema,
  ChatResponseSchema,
  GreetManyRequestSchema,
  GreetManyResponseSchema,
  GreetRequestSchema,
  GreetResponseSchema,
  GreetStreamRequestSchema,
  GreetStreamResponseSchema,
  ResetGreetingsRequestSchema,
  ResetGreetingsResponseSchema,
  SetGreetingRequestSchema,
  SetGreetingResponseSchema,
} from "../gen/greet/v1/greet_pb";
import { codeName, decodeStatusDetails } from "./status";
import { deadlineMs } from "./types";
import type { MethodName, RunOptions, RunResult } from "./types";

/** Wrapped is a protobuf-es message in the shape improbable's client wants. */
interface Wrapped<D extends DescMessage> extends grpc.ProtobufMessage {
  value: MessageShape<D>;
}

/** messageClass makes a google-protobuf-style class for one schema. */
function messageClass<D extends DescMessage>(schema: D): grpc.ProtobufMessageClass<Wrapped<D>> {
  return class {
    value: MessageShape<D> = create(schema);
    serializeBinary(): Uint8Array {
      return toBinary(schema, this.value);
    }
    toObject(): {} {
      return toJson(schema, this.value) as {};
    }
    static deserializeBinary(bytes: Uint8Array): Wrapped<D> {
      const m = new this();
      m.value = fromBinary(schema, bytes);
      return m;
    }
  };
}

const service = { serviceName: "greet.v1.GreetService" };

function method<I extends DescMessage, O extends DescMessage>(
  methodName: MethodName,
  input: I,
  output: O,
  requestStream: boolean,
  responseStream: boolean,
) {
  return {
    methodName,
    service,
    requestStream,
    responseStream,
    requestType: messageClass(input),
    responseType: messageClass(output),
    input,
    output,
  };
}

const methods = {
  Greet: method("Greet", GreetRequestSchema, GreetResponseSchema, false, false),
  SetGreeting: method("SetGreeting", SetGreetingRequestSchema, SetGreetingResponseSchema, false, false),
  GreetStream: method("GreetStream", GreetStreamRequestSchema, GreetStreamResponseSchema, false, true),
  GreetMany: method("GreetMany", GreetManyRequestSchema, GreetManyResponseSchema, true, false),
  Chat: method("Chat", ChatRequestSchema, ChatResponseSchema, true, true),
  ResetGreetings: method("ResetGreetings", ResetGreetingsRequestSchema, ResetGreetingsResponseSchema, false, false),
};

function wrap<D extends DescMessage>(m: { requestType: grpc.ProtobufMessageClass<Wrapped<D>> }, schema: D, init: MessageInitShape<D>): Wrapped<D> {
  const w = new m.requestType();
  w.value = create(schema, init);
  return w;
}

function metadataObject(md: grpc.Metadata | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!md) {
    return out;
  }
  const names: string[] = [];
  md.forEach((name) => names.push(name.toLowerCase()));
  for (const name of names.sort()) {
    out[name] = md.get(name).join(", ");
  }
  return out;
}

/** requests are the messages each method sends, in order. */
function requests(opts: RunOptions): MessageInitShape<DescMessage>[] {
  const name = opts.name ?? "";
  switch (opts.method) {
    case "Greet":
      return [{ name }];
    case "SetGreeting":
      return [{ greeting: opts.greeting ?? "" }];
    case "GreetStream":
      return [{ name, count: opts.count ?? 0, intervalMs: opts.intervalMs ?? 0 }];
    case "GreetMany":
      return [{ name }, { name: "Bo" }, { name: "Cy" }];
    case "Chat":
      return [{ text: `hello from ${name || "the page"}` }, { text: "how are you?" }, { text: "bye" }];
    default:
      return [{}];
  }
}

/**
 * runImprobable makes one call over the WebSocket transport. Chat is full
 * duplex: each message goes out once the answer to the previous one came.
 */
export function runImprobable(opts: RunOptions, res: RunResult): Promise<void> {
  const m = methods[opts.method];
  const reqs = requests(opts);
  return new Promise((resolve) => {
    const md: Record<string, string> = { ...(opts.headers ?? {}) };
    const ms = deadlineMs(opts);
    if (ms !== undefined) {
      md["grpc-timeout"] = `${ms}m`;
    }
    const client = grpc.client<Wrapped<DescMessage>, Wrapped<DescMessage>, grpc.MethodDefinition<Wrapped<DescMessage>, Wrapped<DescMessage>>>(
      m as unknown as grpc.MethodDefinition<Wrapped<DescMessage>, Wrapped<DescMessage>>,
      { host: opts.target.replace(/\/+$/, ""), transport: grpc.WebsocketTransport() },
    );
    let sent = 0;
    const sendNext = () => {
      if (sent < reqs.length) {
        client.send(wrap(m as never, m.input, reqs[sent++] as never));
      }
      if (sent === reqs.length) {
        sent++;
        client.finishSend();
      }
    };
    client.onHeaders((h) => {
      res.headers = metadataObject(h);
    });
    client.onMessage((msg) => {
      res.messages.push(toJson(m.output as DescMessage, msg.value));
      if (opts.method === "Chat") {
        sendNext();
      }
    });
    client.onEnd((code, message, trailers) => {
      const t = metadataObject(trailers);
      if (code === grpc.Code.OK) {
        res.ok = true;
        res.code = "ok";
        res.trailers = t;
      } else {
        res.ok = false;
        res.code = codeName(code);
        res.message = message;
        res.details = decodeStatusDetails(trailers?.get("grpc-status-details-bin")[0]);
        res.trailers = t;
        if (message === "Response closed without headers") {
          res.message += " (the gateway refused the WebSocket upgrade, or does not serve WebSockets)";
        }
      }
      resolve();
    });
    client.start(md);
    if (opts.method === "Chat") {
      sendNext();
    } else {
      while (sent <= reqs.length) {
        sendNext();
      }
    }
  });
}
