// The shapes every client of the demo page shares: what a call asks for and
// what the script could read of its answer. Both are plain JSON so that the
// end-to-end tests can pass them through window.corsgateTest.

/** The four browser clients the page drives. */
export const clientIds = [
  "connect",
  "connect-grpcweb",
  "grpcweb-text",
  "grpcweb-binary",
  "improbable-ws",
] as const;
export type ClientId = (typeof clientIds)[number];

/** The procedures of greet.v1.GreetService. */
export const methodNames = [
  "Greet",
  "SetGreeting",
  "GreetStream",
  "GreetMany",
  "Chat",
  "ResetGreetings",
] as const;
export type MethodName = (typeof methodNames)[number];

/** Human-readable names of the clients, for the page. */
export const clientLabels: Record<ClientId, string> = {
  connect: "connect-web · Connect",
  "connect-grpcweb": "connect-web · gRPC-Web",
  "grpcweb-text": "grpc-web · text",
  "grpcweb-binary": "grpc-web · binary",
  "improbable-ws": "@improbable-eng/grpc-web · WebSocket",
};

/** RunOptions describes one call. Only client, method and target are required. */
export interface RunOptions {
  client: ClientId;
  method: MethodName;
  /** Base URL of the API, for example "http://127.0.0.1:8080". */
  target: string;
  /** Greet and GreetStream: the name; "" makes Greet fail with details. */
  name?: string;
  /** SetGreeting: the new greeting word. */
  greeting?: string;
  /** GreetStream: how many messages to ask for. */
  count?: number;
  /** GreetStream: pause between messages in milliseconds. */
  intervalMs?: number;
  /** Extra request headers, for example authorization and x-request-id. */
  headers?: Record<string, string>;
  /** Send cookies cross-origin (fetch credentials "include", XHR withCredentials). */
  credentials?: boolean;
  /** Deadline of the call in milliseconds; default 10000; 0 or less: none. */
  timeoutMs?: number;
  /**
   * The target is the drop-in API (connect-go), which serves no WebSocket
   * transport: the improbable-ws client then does not try.
   */
  dropIn?: boolean;
}

/** ErrorDetail is one decoded error detail. */
export interface ErrorDetail {
  /** Fully qualified message name, for example "greet.v1.GreetErrorDetail". */
  type: string;
  /** The detail as protobuf JSON when the page knows the type, else base64. */
  value: unknown;
}

/** RunResult is everything the script could read of one call. */
export interface RunResult {
  client: ClientId;
  method: MethodName;
  target: string;
  /** False when the client can't make this call from a browser. */
  supported: boolean;
  ok: boolean;
  /** "ok", "unsupported" or a gRPC code in snake case ("invalid_argument"). */
  code: string;
  message: string;
  details: ErrorDetail[];
  /** Response headers the script could read, names lowercased. */
  headers: Record<string, string>;
  /** Trailers the script could read, names lowercased. */
  trailers: Record<string, string>;
  /** HTTP status of the response when the client exposes it, else 0. */
  httpStatus: number;
  /** Response messages as protobuf JSON, in order. */
  messages: unknown[];
  /** Wall time of the call in milliseconds (not stable; for people). */
  elapsedMs: number;
}

/** blockedHint is appended to the message of a call the browser refused to make or to show. */
export const blockedHint = " (the browser blocked the call: its console says which CORS check failed)";

/** deadlineMs is the call's deadline in milliseconds, or undefined for none. */
export function deadlineMs(opts: RunOptions): number | undefined {
  const ms = opts.timeoutMs ?? 10000;
  return ms > 0 ? ms : undefined;
}

/** Why a client can't make a call, or undefined when it can. */
export function unsupportedReason(
  client: ClientId,
  method: MethodName,
  dropIn = false,
): string | undefined {
  if (client === "improbable-ws") {
    return dropIn
      ? "the drop-in API (connect-go) serves no WebSocket transport: pick Gateway (corsgate serve --websockets)"
      : undefined;
  }
  if (method === "GreetMany" || method === "Chat") {
    return "browsers can't stream request bodies (fetch and XHR send them whole)";
  }
  if (client === "grpcweb-binary" && method === "GreetStream") {
    return "grpc-web's binary mode is for unary calls only";
  }
  return undefined;
}
