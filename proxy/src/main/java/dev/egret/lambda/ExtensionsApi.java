package dev.egret.lambda;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeoutException;

/**
 * A client of the Lambda Extensions API (version 2020-01-01) at {@code AWS_LAMBDA_RUNTIME_API}.
 * Usage, from any thread (every call is non-blocking and completes on the client's event loop):
 *
 * <pre>{@code
 * ExtensionsApi api = new ExtensionsApi(vertx, System.getenv("AWS_LAMBDA_RUNTIME_API"));
 * api.register("egret", false).compose(id -> api.next(id)).onSuccess(event -> ...);
 * }</pre>
 *
 * <p>Every call has a deadline ({@link #REGISTER_WITHIN}, {@link #REPORT_WITHIN}, and {@link
 * #BODY_WITHIN} for every answer's body once its head came), past which it fails and its
 * connection is closed; only the head of {@code event/next}, Lambda's long poll, may take any
 * time. So a hung Extensions API ends in a failed future, which the extension turns into an exit.
 *
 * <p>It never uses a proxy. The runtime API lives on a link-local/loopback address inside the
 * sandbox, which Egret itself would rightly refuse; clients that honour the function's
 * {@code HTTP_PROXY} break every invoke when {@code NO_PROXY} lacks that host
 * (aws/aws-lambda-go#641, awslabs/aws-lambda-cpp#65). Vert.x reads no proxy environment
 * variables, and the options below say so explicitly.
 */
final class ExtensionsApi implements AutoCloseable {
  static final String BASE = "/2020-01-01/extension";
  static final String NAME_HEADER = "Lambda-Extension-Name";
  static final String ID_HEADER = "Lambda-Extension-Identifier";
  static final String ERROR_TYPE_HEADER = "Lambda-Extension-Function-Error-Type";
  /** Answers of this API are a few hundred bytes; a larger one is a broken peer, not data. */
  static final int MAX_BODY = 64 * 1024;
  /**
   * How long {@code register} may take: Lambda gives the whole init phase (every extension's
   * register and the runtime's init) 10 s, so an answer later than that is no answer.
   */
  static final Duration REGISTER_WITHIN = Duration.ofSeconds(10);
  /** How long {@code init/error} and {@code exit/error} may take: they are said on the way out. */
  static final Duration REPORT_WITHIN = Duration.ofSeconds(2);
  /**
   * How long an answer's body may take once its head arrived. {@code event/next} has no deadline
   * for its head: it is a long poll that spans the time between invokes, while the sandbox is
   * frozen, and any timer would fire on the thaw before the event is read.
   */
  static final Duration BODY_WITHIN = Duration.ofSeconds(2);

  private final Vertx vertx;
  private final HttpClient client;
  private final String host;
  private final int port;

  /** @param runtimeApi {@code host:port} (or {@code [v6]:port}), as Lambda sets it */
  ExtensionsApi(Vertx vertx, String runtimeApi) {
    int colon = runtimeApi == null ? -1 : runtimeApi.lastIndexOf(':');
    if (colon <= 0 || colon == runtimeApi.length() - 1) {
      throw new IllegalArgumentException("AWS_LAMBDA_RUNTIME_API must be HOST:PORT, got '"
          + runtimeApi + "'");
    }
    String h = runtimeApi.substring(0, colon);
    this.host = h.startsWith("[") && h.endsWith("]") ? h.substring(1, h.length() - 1) : h;
    try {
      this.port = Integer.parseInt(runtimeApi.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("AWS_LAMBDA_RUNTIME_API must be HOST:PORT, got '"
          + runtimeApi + "'");
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("AWS_LAMBDA_RUNTIME_API port must be 1-65535, got '"
          + runtimeApi + "'");
    }
    this.vertx = vertx;
    this.client = vertx.createHttpClient(new HttpClientOptions()
        .setProxyOptions(null)              // never HTTP_PROXY: see the class comment
        .setKeepAlive(true)
        .setConnectTimeout(2000)
        // event/next is a long poll that spans the time between invokes (the sandbox is frozen
        // in between): no idle timeout may cut it.
        .setIdleTimeout(0));
  }

  /** The runtime API's host, without brackets. */
  String host() {
    return host;
  }

  /**
   * Registers for {@code SHUTDOWN}, and for {@code INVOKE} too when {@code invokes} (tracing
   * needs each invocation's trace header); completes with the extension identifier.
   */
  Future<String> register(String name, boolean invokes) {
    JsonArray events = invokes ? new JsonArray().add("INVOKE").add("SHUTDOWN")
        : new JsonArray().add("SHUTDOWN");
    return call(HttpMethod.POST, "/register", NAME_HEADER, name, null,
        new JsonObject().put("events", events), REGISTER_WITHIN)
        .compose(r -> {
          String id = r.headers.get(ID_HEADER);
          if (id == null || id.isBlank()) {
            return Future.failedFuture("register answered without a " + ID_HEADER + " header");
          }
          return Future.succeededFuture(id);
        });
  }

  /** Waits (without blocking) for the next event; completes when the Extensions API sends one. */
  Future<Event> next(String id) {
    return call(HttpMethod.GET, "/event/next", ID_HEADER, id, null, null, null)
        .compose(r -> {
          try {
            return Future.succeededFuture(Event.parse(new JsonObject(r.body)));
          } catch (RuntimeException e) {
            return Future.failedFuture("event/next answered a body that is not an event: "
                + e.getMessage());
          }
        });
  }

  /** Reports a failed init ({@code /init/error}); Lambda then fails the init phase. */
  Future<Void> initError(String id, String type, List<String> lines) {
    return error("/init/error", id, type, lines);
  }

  /** Reports an error just before exiting ({@code /exit/error}). */
  Future<Void> exitError(String id, String type, List<String> lines) {
    return error("/exit/error", id, type, lines);
  }

  private Future<Void> error(String path, String id, String type, List<String> lines) {
    JsonObject body = new JsonObject()
        .put("errorMessage", String.join("\n", lines))
        .put("errorType", type)
        .put("stackTrace", new JsonArray());
    return call(HttpMethod.POST, path, ID_HEADER, id, type, body, REPORT_WITHIN).mapEmpty();
  }

  private record Answer(io.vertx.core.MultiMap headers, Buffer body) {}

  /**
   * One call. It fails, and its connection is closed, when the whole answer took longer than
   * {@code within} (null: the head may take any time), or its body longer than {@link
   * #BODY_WITHIN} after the head: a hung Extensions API must never keep the extension alive.
   */
  private Future<Answer> call(HttpMethod method, String path, String idHeader, String idValue,
      String errorType, JsonObject body, Duration within) {
    String what = method + " " + BASE + path;
    Promise<Answer> answer = Promise.promise();
    java.util.concurrent.atomic.AtomicReference<HttpClientRequest> sent =
        new java.util.concurrent.atomic.AtomicReference<>();
    long timer = within == null ? -1 : vertx.setTimer(within.toMillis(), t -> {
      if (answer.tryFail(new TimeoutException(what + " was not answered within "
          + seconds(within)))) {
        HttpClientRequest r = sent.get();
        if (r != null) {
          r.reset();
        }
      }
    });
    exchange(what, method, path, idHeader, idValue, errorType, body, sent).onComplete(ar -> {
      if (timer >= 0) {
        vertx.cancelTimer(timer);
      }
      if (ar.succeeded()) {
        answer.tryComplete(ar.result());
      } else {
        answer.tryFail(ar.cause());
      }
    });
    return answer.future();
  }

  private Future<Answer> exchange(String what, HttpMethod method, String path, String idHeader,
      String idValue, String errorType, JsonObject body,
      java.util.concurrent.atomic.AtomicReference<HttpClientRequest> sent) {
    RequestOptions options = new RequestOptions().setMethod(method).setHost(host).setPort(port)
        .setURI(BASE + path).putHeader(idHeader, idValue);
    if (errorType != null) {
      options.putHeader(ERROR_TYPE_HEADER, errorType);
    }
    if (body != null) {
      options.putHeader("Content-Type", "application/json");
    }
    return client.request(options)
        .compose(request -> {
          sent.set(request);
          return body == null ? request.send() : request.send(body.toBuffer());
        })
        .compose(response -> read(what, response).compose(bytes -> {
          if (response.statusCode() != 200 && response.statusCode() != 202) {
            return Future.failedFuture(what + " answered " + response.statusCode() + ": "
                + abbreviate(bytes.toString()));
          }
          return Future.succeededFuture(new Answer(response.headers(), bytes));
        }));
  }

  /**
   * Collects the body, refusing one larger than {@link #MAX_BODY} or slower than {@link
   * #BODY_WITHIN}.
   */
  private Future<Buffer> read(String what, HttpClientResponse response) {
    Promise<Buffer> done = Promise.promise();
    Buffer bytes = Buffer.buffer();
    long timer = vertx.setTimer(BODY_WITHIN.toMillis(), t -> {
      if (done.tryFail(new TimeoutException(what + ": the answer's body was not complete within "
          + seconds(BODY_WITHIN)))) {
        response.request().reset();
      }
    });
    done.future().onComplete(x -> vertx.cancelTimer(timer));
    response.handler(chunk -> {
      if (bytes.length() + chunk.length() > MAX_BODY) {
        done.tryFail("the Extensions API sent a body over " + MAX_BODY + " bytes");
        response.request().connection().close();
        return;
      }
      bytes.appendBuffer(chunk);
    });
    response.exceptionHandler(done::tryFail);
    response.endHandler(v -> done.tryComplete(bytes));
    return done.future();
  }

  private static String seconds(Duration d) {
    return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
  }

  private static String abbreviate(String s) {
    return s.length() <= 200 ? s : s.substring(0, 200) + "...";
  }

  @Override
  public void close() {
    client.close();
  }
}
