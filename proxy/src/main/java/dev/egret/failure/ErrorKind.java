package dev.egret.failure;

/**
 * Every way a hop can be refused or fail, each with the HTTP status the client gets and the
 * RFC 9209 {@code Proxy-Status} error type. This enum is the documented error table; {@link
 * FailureResponse} is the one place that turns it into bytes.
 */
public enum ErrorKind {
  /** Host not allowed, denied by rule, wrong port, method or path, or plaintext blocked. */
  REQUEST_DENIED(403, "http_request_denied"),
  /**
   * Gateway mode: the request's identity is refused (a certificate that names no client, a
   * certificate and a token that name different clients, no identity where no client uses
   * tokens). RFC 9209 has no identity error type; {@code http_request_denied} ("the request was
   * denied by the proxy") is the one that fits, as for a policy denial.
   */
  IDENTITY_DENIED(403, "http_request_denied"),
  /**
   * Gateway mode: a token is missing, malformed or names no client. The 407 carries {@code
   * Proxy-Authenticate: Basic realm="egret"}, so clients that wait for a challenge (the JDK's
   * HttpClient) send their credentials; error type {@code http_request_denied}, as above.
   */
  PROXY_AUTHENTICATION_REQUIRED(407, "http_request_denied"),
  /** A resolved address lies in a denied range. */
  DESTINATION_IP_PROHIBITED(403, "destination_ip_prohibited"),
  DNS_ERROR(502, "dns_error"),
  CONNECTION_REFUSED(502, "connection_refused"),
  CONNECTION_TIMEOUT(504, "connection_timeout"),
  /** Untrusted, expired, not yet valid, wrong host, weak key or signature, pin mismatch. */
  TLS_CERTIFICATE_ERROR(502, "tls_certificate_error"),
  /** Version below the minimum, no shared cipher, not TLS at all. */
  TLS_PROTOCOL_ERROR(502, "tls_protocol_error"),
  RESPONSE_TIMEOUT(504, "http_response_timeout"),
  CONNECTION_LIMIT_REACHED(503, "connection_limit_reached"),
  /** Malformed or ambiguous request; the status may be 411, 414, 431, 501 or 505 instead. */
  REQUEST_ERROR(400, "http_request_error"),
  LOOP_DETECTED(508, "proxy_loop_detected"),
  /** The upstream answered with something that is not a valid HTTP/1.1 response. */
  UPSTREAM_PROTOCOL_ERROR(502, "http_protocol_error"),
  /** The upstream connection broke after the response started: nothing can be sent, only logged. */
  RESPONSE_INCOMPLETE(502, "http_response_incomplete"),
  /**
   * The downstream went away mid-request (its body broke off). No answer can reach it; counted as
   * {@code failed} with RFC 9209's generic request error type, like Envoy's "DC" or nginx's 499.
   */
  DOWNSTREAM_ABORTED(400, "http_request_error"),
  /** The upstream went away for another reason (reset, closed before answering). */
  DESTINATION_UNAVAILABLE(502, "destination_unavailable"),
  /** Egret itself failed on the hop (a bug, an exhausted resource): never counted a success. */
  PROXY_INTERNAL_ERROR(500, "proxy_internal_error");

  private final int status;
  private final String proxyStatusError;

  ErrorKind(int status, String proxyStatusError) {
    this.status = status;
    this.proxyStatusError = proxyStatusError;
  }

  /**
   * True for Egret's own refusals (policy, address guard, bad request, loop), counted as outcome
   * {@code denied}; false for failures of the upstream or of Egret's capacity ({@code failed}).
   */
  public boolean refusal() {
    return this == REQUEST_DENIED || this == DESTINATION_IP_PROHIBITED || this == REQUEST_ERROR
        || this == LOOP_DETECTED || this == IDENTITY_DENIED
        || this == PROXY_AUTHENTICATION_REQUIRED;
  }

  public int status() {
    return status;
  }

  /** The RFC 9209 error type, also the {@code error} label of {@code egret_requests_total}. */
  public String proxyStatusError() {
    return proxyStatusError;
  }
}
