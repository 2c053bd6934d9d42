package dev.egret.listener;

import dev.egret.failure.ErrorKind;
import dev.egret.failure.ProxyFailure;

/** The strict reader's refusals, all {@link ErrorKind#REQUEST_ERROR} with a refined status. */
final class Refusals {
  private Refusals() {}

  static ProxyFailure badRequest(String details) {
    return new ProxyFailure(ErrorKind.REQUEST_ERROR, 400, details, null);
  }

  static ProxyFailure uriTooLong(String details) {
    return new ProxyFailure(ErrorKind.REQUEST_ERROR, 414, details, null);
  }

  static ProxyFailure headersTooLarge(String details) {
    return new ProxyFailure(ErrorKind.REQUEST_ERROR, 431, details, null);
  }

  static ProxyFailure notImplemented(String details) {
    return new ProxyFailure(ErrorKind.REQUEST_ERROR, 501, details, null);
  }

  static ProxyFailure versionNotSupported(String details) {
    return new ProxyFailure(ErrorKind.REQUEST_ERROR, 505, details, null);
  }
}
