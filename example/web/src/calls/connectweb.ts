// The connect-web clients: one Connect transport (GET for Greet, which has no
// side effects) and one gRPC-Web transport, both over fetch.

import { toJson } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { CallOptions, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import {
  GreetResponseSchema,
  GreetService,
  GreetStreamResponseSchema,
  ResetGreetingsResponseSchema,
  SetGreetingResponseSchema,
} from "../gen/greet/v1/greet_pb";
import { codeName, decodeDetail, headersObject } from "./status";
import { blockedHint, deadlineMs } from "./types";
import type { RunOptions, RunResult } from "./types";

/**
 * recordingFetch calls fetch, with credentials "include" when asked, and keeps
 * the HTTP status and the headers the script could read of the response: the
 * error path of connect-web merges headers and trailers, and a trailers-only
 * gRPC-Web error shows only here.
 */
function recordingFetch(opts: RunOptions, res: RunResult, raw: { headers?: Headers }): typeof globalThis.fetch {
  return async (input, init) => {
    const r = await globalThis.fetch(input, opts.credentials ? { ...init, credentials: "include" } : init);
    res.httpStatus = r.status;
    raw.headers = r.headers;
    return r;
  };
}

function transport(opts: RunOptions, fetch: typeof globalThis.fetch): Transport {
  if (opts.client === "connect") {
    return createConnectTransport({ baseUrl: opts.target, fetch, useHttpGet: true });
  }
  return createGrpcWebTransport({ baseUrl: opts.target, fetch });
}

/** runConnectWeb makes one call with connect-web and reports what the script saw. */
export async function runConnectWeb(opts: RunOptions, res: RunResult): Promise<void> {
  const raw: { headers?: Headers } = {};
  const client = createClient(GreetService, transport(opts, recordingFetch(opts, res, raw)));
  const call: CallOptions = {
    headers: opts.headers ?? {},
    timeoutMs: deadlineMs(opts),
    onHeader: (h) => {
      res.headers = headersObject(h);
    },
    onTrailer: (t) => {
      res.trailers = headersObject(t);
    },
  };
  const push = <D extends DescMessage>(schema: D, m: MessageShape<D>) =>
    res.messages.push(toJson(schema, m));
  try {
    switch (opts.method) {
      case "Greet":
        push(GreetResponseSchema, await client.greet({ name: opts.name ?? "" }, call));
        break;
      case "SetGreeting":
        push(SetGreetingResponseSchema, await client.setGreeting({ greeting: opts.greeting ?? "" }, call));
        break;
      case "ResetGreetings":
        push(ResetGreetingsResponseSchema, await client.resetGreetings({}, call));
        break;
      case "GreetStream": {
        const req = { name: opts.name ?? "", count: opts.count ?? 0, intervalMs: opts.intervalMs ?? 0 };
        for await (const m of client.greetStream(req, call)) {
          push(GreetStreamResponseSchema, m);
        }
        break;
      }
      default:
        throw new ConnectError(`${opts.method} is not callable from a browser`, Code.Unimplemented);
    }
    res.ok = true;
    res.code = "ok";
  } catch (e) {
    const err = ConnectError.from(e);
    res.ok = false;
    res.code = codeName(err.code);
    res.message = err.rawMessage;
    if (raw.headers === undefined) {
      // fetch rejected without a response: CORS (or the network) refused.
      res.message += blockedHint;
    }
    res.details = err.details.map((d) =>
      "desc" in d
        ? { type: d.desc.typeName, value: toJson(d.desc, d.value as never) }
        : decodeDetail(d.type, d.value),
    );
    // The error's metadata holds headers and trailers together: report the
    // HTTP response's headers as headers (Connect unary trailers travel as
    // "trailer-" headers) and the rest as trailers.
    const headers = headersObject(raw.headers);
    for (const name of Object.keys(headers)) {
      if (name.startsWith("trailer-")) {
        delete headers[name];
      }
    }
    res.headers = headers;
    const trailers: Record<string, string> = {};
    for (const [name, value] of Object.entries(headersObject(err.metadata))) {
      if (headers[name] !== value) {
        trailers[name] = value;
      }
    }
    res.trailers = trailers;
  }
}
