/**
 * What every test needs, in one place. {@link dev.egret.testing.EgretFixture} starts an Egret on
 * a config (in this JVM, wired with metrics and the admin port, or as {@code egret run} in a child
 * JVM); {@link dev.egret.testing.RecordingTelemetry} records the hops it reports; {@link
 * dev.egret.testing.TestPki} issues the certificates and {@link dev.egret.testing.TlsTestServer}
 * plays an upstream that speaks exactly the TLS a test asks for; {@link
 * dev.egret.testing.LogLines} and {@link dev.egret.testing.PrometheusText} read the access log and
 * a scrape. A feature's test lives in the feature's package and takes these from here.
 */
package dev.egret.testing;
