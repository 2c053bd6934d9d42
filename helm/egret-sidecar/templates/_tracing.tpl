{{/*
Tracing beside Egret (docs/tracing.md, "Deploying the collector"): the AWS Distro for
OpenTelemetry collector as one more container of the pod, receiving OTLP/HTTP on the pod's
shared loopback and exporting to AWS X-Ray with the awsxray exporter, and the `tracing:`
section of Egret's config pointing at it. With tracing.enabled false (the default) every
template here renders nothing, so a pod without tracing is exactly what it was.

The same dict as the other egret.* templates ("root", "values"); the collector goes just
before Egret, so it starts first and, as a native sidecar, stops after Egret has flushed its
last spans on SIGTERM:

  spec:
    initContainers:
      {{- with include "egret.tracing.collector" $egret | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- include "egret.container" $egret | nindent 6 }}
  ---
  {{ include "egret.tracing.configMap" $egret }}

(egret.volumes already holds the collector's config volume, and egret.checksum its config.)
The pod's ServiceAccount needs X-Ray write access: xray:PutTraceSegments and
xray:PutTelemetryRecords, e.g. through IRSA or EKS Pod Identity.
*/}}

{{/* Where the collector listens: the pod's loopback, Egret's default tracing.endpoint. */}}
{{- define "egret.tracing.receiver" -}}
127.0.0.1:4318
{{- end }}

{{/* The `tracing:` section of Egret's config file (nothing when tracing is off). */}}
{{- define "egret.tracing.configSection" -}}
{{- $s := include "egret.settings" . | fromYaml }}
{{- if $s.tracing.enabled }}
{{- $t := $s.tracing -}}
tracing:
  exporter: otlp
  endpoint: {{ printf "http://%s/v1/traces" (include "egret.tracing.receiver" .) | quote }}
  {{- /* A number, or the string `--set` passes ("0.25"): either is a YAML number here. */}}
  sampleRatio: {{ $t.sampleRatio }}
  propagate: {{ $t.propagate }}
  xray: {{ $t.xray }}
{{- end }}
{{- end }}

{{- define "egret.tracing.configMapName" -}}
{{- printf "%s-otel" (include "egret.configMapName" . | trunc 58 | trimSuffix "-") }}
{{- end }}

{{/* The collector's config file. */}}
{{- define "egret.tracing.collectorConfig" -}}
{{- $c := (include "egret.settings" . | fromYaml).tracing.collector -}}
extensions:
  health_check:
    # Loopback only: the image's /healthcheck, the liveness probe, asks here.
    endpoint: 127.0.0.1:13133
receivers:
  otlp:
    protocols:
      http:
        # The pod's loopback only: Egret (and the app, if it wants) send spans here.
        endpoint: {{ include "egret.tracing.receiver" . }}
processors:
  # Refuses spans before the container's memory limit is reached, instead of being killed.
  memory_limiter:
    check_interval: 1s
    limit_percentage: 75
    spike_limit_percentage: 20
  # X-Ray takes up to 50 segments per PutTraceSegments call.
  batch/traces:
    timeout: 1s
    send_batch_size: 50
exporters:
  awsxray:
    region: {{ $c.region | quote }}
    # Searchable in X-Ray as annotations, dots turned to underscores:
    # annotation.egret_destination = "api.example-crm.com".
    indexed_attributes:
      {{- toYaml $c.indexedAttributes | nindent 6 }}
service:
  extensions: [health_check]
  telemetry:
    # No metrics port of the collector's own, which could take a port the app wants.
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch/traces]
      exporters: [awsxray]
{{- end }}

{{/*
The collector container, as one list item (nothing when tracing is off). A native sidecar
unless nativeSidecar is false, like Egret's own container; list it just before Egret's.
*/}}
{{- define "egret.tracing.collector" -}}
{{- $s := include "egret.settings" . | fromYaml }}
{{- if $s.tracing.enabled }}
{{- $c := $s.tracing.collector }}
{{- if not $c.region }}
{{- fail "tracing.enabled=true needs tracing.collector.region, the AWS region X-Ray receives the spans in (e.g. eu-west-1)" }}
{{- end -}}
- name: otel-collector
  image: {{ printf "%s:%s" $c.image.repository $c.image.tag }}
  imagePullPolicy: {{ $c.image.pullPolicy }}
  {{- if $s.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  # The image's ENTRYPOINT is the collector; this replaces its default config.
  args: ["--config=/etc/otel-collector/collector.yaml"]
  {{- with $c.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  # No startup or readiness probe: neither Egret nor the app waits for tracing, and a
  # collector that is down costs counted spans (egret_trace_spans_dropped_total), not calls.
  livenessProbe:
    exec:
      command: [/healthcheck]
    periodSeconds: 10
    failureThreshold: 3
    timeoutSeconds: 2
  resources:
    {{- toYaml $c.resources | nindent 4 }}
  securityContext:
    {{- toYaml $c.securityContext | nindent 4 }}
  volumeMounts:
    - name: egret-otel-config
      mountPath: /etc/otel-collector
      readOnly: true
{{- end }}
{{- end }}

{{/* The collector's config volume, as a list item (nothing when tracing is off). */}}
{{- define "egret.tracing.volumes" -}}
{{- $s := include "egret.settings" . | fromYaml }}
{{- if $s.tracing.enabled -}}
- name: egret-otel-config
  configMap:
    name: {{ include "egret.tracing.configMapName" . }}
{{- end }}
{{- end }}

{{/* The ConfigMap holding the collector's config (a whole object; nothing when tracing is off). */}}
{{- define "egret.tracing.configMap" -}}
{{- $s := include "egret.settings" . | fromYaml }}
{{- if $s.tracing.enabled -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "egret.tracing.configMapName" . }}
  {{- with .labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
data:
  collector.yaml: |
    {{- include "egret.tracing.collectorConfig" . | nindent 4 }}
{{- end }}
{{- end }}
