// run: one entry point for every client, used by the page and the tests.

import { runConnectWeb } from "./connectweb";
import { runGrpcWeb } from "./grpcweb";
import { runImprobable } from "./improbable";
import { clientIds, methodNames, unsupportedReason } from "./types";
import type { RunOptions, RunResult } from "./types";

/**
 * run makes one call and resolves to what the script could read of it. It
 * never rejects: failures are results with ok false.
 */
export async function run(opts: RunOptions): Promise<RunResult> {
  const res: RunResult = {
    client: opts.client,
    method: opts.method,
    target: opts.target,
    supported: true,
    ok: false,
    code: "",
    message: "",
    details: [],
    headers: {},
    trailers: {},
    httpStatus: 0,
    messages: [],
    elapsedMs: 0,
  };
  if (!clientIds.includes(opts.client)) {
    res.code = "invalid_argument";
    res.message = `unknown client ${JSON.stringify(opts.client)}; one of ${clientIds.join(", ")}`;
    return res;
  }
  if (!methodNames.includes(opts.method)) {
    res.code = "invalid_argument";
    res.message = `unknown method ${JSON.stringify(opts.method)}; one of ${methodNames.join(", ")}`;
    return res;
  }
  const reason = unsupportedReason(opts.client, opts.method, opts.dropIn ?? false);
  if (reason) {
    res.supported = false;
    res.code = "unsupported";
    res.message = reason;
    return res;
  }
  const start = performance.now();
  try {
    if (opts.client === "connect" || opts.client === "connect-grpcweb") {
      await runConnectWeb(opts, res);
    } else if (opts.client === "improbable-ws") {
      await runImprobable(opts, res);
    } else {
      await runGrpcWeb(opts, res);
    }
  } catch (e) {
    res.ok = false;
    res.code = "unknown";
    res.message = `the page failed: ${String(e)}`;
  }
  res.elapsedMs = Math.round(performance.now() - start);
  return res;
}
