package dev.egret.trace;

import static org.assertj.core.api.Assertions.assertThat;

import io.opentelemetry.api.trace.SpanContext;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class TraceHeadersTest {

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01|true",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00|false",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03|true",
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future|true",
  })
  void readsAValidTraceparent(String header, boolean sampled) {
    SpanContext c = TraceHeaders.traceparent(header);
    assertThat(c).isNotNull();
    assertThat(c.getTraceId()).isEqualTo("4bf92f3577b34da6a3ce929d0e0e4736");
    assertThat(c.getSpanId()).isEqualTo("00f067aa0ba902b7");
    assertThat(c.isSampled()).isEqualTo(sampled);
    assertThat(c.isRemote()).isTrue();
  }

  @ParameterizedTest(name = "[{index}] {0}")
  @ValueSource(strings = {
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",   // 00 has no extra field
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",         // version ff is invalid
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",         // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",         // zero span id
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",         // upper case
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
      "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",        // later version, no dash
      "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
  })
  void refusesAnythingElseAsATraceparent(String header) {
    assertThat(TraceHeaders.traceparent(header)).isNull();
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1|true",
      "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0|false",
      "Sampled=?;Parent=53995c3f42cd8ad8;Root=1-5759e988-bd862e3fe1be46a994272793|false",
      "Root=1-5759e988-bd862e3fe1be46a994272793; Parent=53995c3f42cd8ad8; Lineage=a87bd80c:0|false",
      "Self=1-67891234-12456789abcdef012345678;Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1|true",
  })
  void readsAnXrayHeaderAsAW3cContext(String header, boolean sampled) {
    SpanContext c = TraceHeaders.xray(header);
    assertThat(c).isNotNull();
    assertThat(c.getTraceId()).isEqualTo("5759e988bd862e3fe1be46a994272793");
    assertThat(c.getSpanId()).isEqualTo("53995c3f42cd8ad8");
    assertThat(c.isSampled()).isEqualTo(sampled);
    // And back: the same header, in Egret's field order.
    assertThat(TraceHeaders.xray(c)).isEqualTo("Root=1-5759e988-bd862e3fe1be46a994272793;Parent="
        + "53995c3f42cd8ad8;Sampled=" + (sampled ? "1" : "0"));
  }

  @ParameterizedTest(name = "[{index}] {0}")
  @ValueSource(strings = {
      "Root=1-5759e988-bd862e3fe1be46a994272793",                       // no parent
      "Parent=53995c3f42cd8ad8;Sampled=1",                               // no root
      "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", // unknown version
      "Root=1-5759e988bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",  // no dash
      "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8",  // short
      "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad",  // short parent
      "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
          + "Root=1-11111111-bd862e3fe1be46a994272793",                 // two roots
      "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8", // zero trace id
  })
  void refusesAnIncompleteOrAmbiguousXrayHeader(String header) {
    assertThat(TraceHeaders.xray(header)).isNull();
  }

  @org.junit.jupiter.api.Test
  void refusesAnOverlongHeaderWithoutParsingIt() {
    String big = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;" + "x".repeat(600);
    assertThat(TraceHeaders.xray(big)).isNull();
    assertThat(TraceHeaders.traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        + " ".repeat(600))).isNull();
  }
}
