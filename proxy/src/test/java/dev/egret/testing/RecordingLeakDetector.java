package dev.egret.testing;

import io.netty.util.ResourceLeakDetector;

/**
 * Netty's leak detector, reporting to {@link LeakRecorder} whatever the logger's level. The test
 * JVM names it in {@code -Dio.netty.customResourceLeakDetector} (surefire's argLine), so Netty
 * builds every detector from it however early a test loads Netty's buffers; a factory installed
 * by a listener came too late in a full run, where earlier tests had loaded them already.
 */
public final class RecordingLeakDetector<T> extends ResourceLeakDetector<T> {

  /** The constructor Netty's default factory calls for a custom detector class. */
  public RecordingLeakDetector(Class<?> resourceType, int samplingInterval) {
    super(resourceType, samplingInterval);
    setLeakListener((type, records) -> LeakRecorder.record(type + ": " + records));
  }

  // Netty reports only while its logger logs errors; a test that quiets logging must not
  // silence the leak check with it.
  @Override
  protected boolean needReport() {
    return true;
  }
}
