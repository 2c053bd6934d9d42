{{/*
Egret as named templates, for your own chart (deploy/README.md: "Egret beside your own workload").

Every template takes a dict: "root" is your chart's top context (.), "values" your Egret
settings (usually .Values.egret); anything left out takes the defaults of "egret.defaults".

  {{- $egret := dict "root" . "values" .Values.egret }}
  metadata:
    annotations:
      checksum/egret-config: {{ include "egret.checksum" $egret }}
  spec:
    initContainers:
      {{- include "egret.container" $egret | nindent 6 }}
    containers:
      - name: my-app
        env:
          {{- include "egret.env" $egret | nindent 10 }}
    volumes:
      {{- include "egret.volumes" $egret | nindent 6 }}
  ---
  {{ include "egret.configMap" $egret }}
*/}}

{{/* The defaults, the same as the egret chart's values.yaml (HelmRenderTest compares them). */}}
{{- define "egret.defaults" -}}
image:
  repository: registry.example.com/platform/egret
  tag: "0.1.0"
  digest: ""
  pullPolicy: IfNotPresent
nativeSidecar: true
holdApplicationUntilReady: true
ports:
  proxy: 3128
  admin: 9901
jvmProfile: sidecar
env: []
resources:
  requests:
    cpu: 50m
    memory: 256Mi
  limits:
    memory: 512Mi
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
tmpSizeLimit: 64Mi
probes:
  startup:
    periodSeconds: 1
    failureThreshold: 60
  readiness:
    periodSeconds: 5
    failureThreshold: 2
  liveness:
    periodSeconds: 10
    failureThreshold: 3
  timeoutSeconds: 2
configMapName: ""
# listen.transparent entries (address, port, protocol) for the config file: set by the egret
# chart's egret.enforce, whose init containers install the iptables rules that need them.
transparent: []
configSources: []
extraVolumeMounts: []
extraVolumes: []
noProxy:
  - localhost
  - 127.0.0.1
  - ::1
  - 169.254.169.254
  - 169.254.170.2
  - 169.254.170.23
  - .svc
  - .cluster.local
lowerCaseProxyEnv: true
config:
  allow: []
# The egret chart's `tracing` values: an OpenTelemetry collector beside Egret and the config's
# tracing: section (docs/tracing.md, "Deploying the collector"). Off: neither is rendered.
tracing:
  enabled: false
  sampleRatio: 0.01
  propagate: passthrough
  xray: true
  collector:
    image:
      repository: public.ecr.aws/aws-observability/aws-otel-collector
      tag: v0.49.0
      pullPolicy: IfNotPresent
    region: ""
    indexedAttributes: [egret.destination, egret.kind, egret.outcome]
    env: []
    resources:
      requests:
        cpu: 20m
        memory: 64Mi
      limits:
        memory: 256Mi
    securityContext:
      runAsNonRoot: true
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: [ALL]
      seccompProfile:
        type: RuntimeDefault
{{- end }}

{{/* The settings with the defaults filled in, as YAML (fromYaml it). Lists replace, maps merge. */}}
{{- define "egret.settings" -}}
{{- $defaults := include "egret.defaults" . | fromYaml }}
{{- $given := deepCopy (default dict .values) }}
{{- toYaml (mustMergeOverwrite $defaults $given) }}
{{- end }}

{{- define "egret.configMapName" -}}
{{- $s := include "egret.settings" . | fromYaml }}
{{- default (printf "%s-egret" .root.Release.Name) $s.configMapName | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "egret.imageRef" -}}
{{- $img := (include "egret.settings" . | fromYaml).image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository $img.tag }}
{{- end }}
{{- end }}

{{/* The proxy URL the app uses: Egret on the pod's shared loopback. */}}
{{- define "egret.proxyUrl" -}}
{{- $s := include "egret.settings" . | fromYaml }}
{{- printf "http://127.0.0.1:%d" (int $s.ports.proxy) }}
{{- end }}

{{/*
Egret's config file. These templates own `version` and `listen`: the proxy stays on loopback
and the admin port binds every interface so kubelet probes and Prometheus reach it.
*/}}
{{- define "egret.configFile" -}}
{{- $s := include "egret.settings" . | fromYaml -}}
version: 1
listen:
  proxy: {{ printf "127.0.0.1:%d" (int $s.ports.proxy) | quote }}
  admin: {{ printf "0.0.0.0:%d" (int $s.ports.admin) | quote }}
{{- with $s.transparent }}
  transparent:
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- /* The order of config/egret.yaml, so the rendered file reads like the documented one. */}}
{{- range $key := list "mode" "plaintext" "tls" "addresses" "timeouts" "limits" "allow" "deny" }}
{{- if hasKey $s.config $key }}
{{ dict $key (get $s.config $key) | toYaml | trimSuffix "\n" }}
{{- end }}
{{- end }}
{{- with include "egret.tracing.configSection" . }}
{{ . }}
{{- end }}
{{- end }}

{{/* For a pod annotation: a new allowlist rolls the pods. */}}
{{- define "egret.checksum" -}}
{{- $s := include "egret.settings" . | fromYaml }}
{{- if $s.tracing.enabled }}
{{- /* The collector reads its config only at start: a new one must roll the pods too. */}}
{{- print (include "egret.configFile" .) (include "egret.tracing.collectorConfig" .) | sha256sum }}
{{- else }}
{{- include "egret.configFile" . | sha256sum }}
{{- end }}
{{- end }}

{{/* The ConfigMap holding egret.yaml (a whole object). */}}
{{- define "egret.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "egret.configMapName" . }}
  {{- with .labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
data:
  egret.yaml: |
    {{- include "egret.configFile" . | nindent 4 }}
{{- end }}

{{/*
The Egret container, as one list item. A native sidecar (for initContainers, restartPolicy:
Always, Kubernetes 1.29+) unless nativeSidecar is false: then list it first in containers.
The command is the image's ENTRYPOINT; only `run` is passed.
*/}}
{{- define "egret.container" -}}
{{- $s := include "egret.settings" . | fromYaml }}
{{- if and $s.nativeSidecar (semverCompare "<1.29.0-0" .root.Capabilities.KubeVersion.Version) }}
{{- fail (printf "egret.nativeSidecar=true needs Kubernetes 1.29 or newer (this cluster is %s): set egret.nativeSidecar=false, or pass --kube-version to helm template" .root.Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if eq (int $s.ports.proxy) (int $s.ports.admin) }}
{{- fail "egret.ports.proxy and egret.ports.admin must differ" }}
{{- end -}}
{{- if not (has $s.jvmProfile (list "sidecar" "gateway")) }}
{{- fail (printf "egret.jvmProfile is %q; it must be sidecar or gateway" (toString $s.jvmProfile)) }}
{{- end -}}
- name: egret
  image: {{ include "egret.imageRef" . }}
  imagePullPolicy: {{ $s.image.pullPolicy }}
  {{- if $s.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  args: ["run"]
  env:
    - name: EGRET_CONFIG
      value: /etc/egret/egret.yaml
    # The JVM profile of the image's launcher: its flags are the image's /app/<profile>.flags.
    - name: EGRET_JVM_PROFILE
      value: {{ $s.jvmProfile | quote }}
    {{- with $s.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: egret-proxy
      containerPort: {{ $s.ports.proxy }}
      protocol: TCP
    - name: egret-admin
      containerPort: {{ $s.ports.admin }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /readyz
      port: egret-admin
    periodSeconds: {{ $s.probes.startup.periodSeconds }}
    failureThreshold: {{ $s.probes.startup.failureThreshold }}
    timeoutSeconds: {{ $s.probes.timeoutSeconds }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: egret-admin
    periodSeconds: {{ $s.probes.readiness.periodSeconds }}
    failureThreshold: {{ $s.probes.readiness.failureThreshold }}
    timeoutSeconds: {{ $s.probes.timeoutSeconds }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: egret-admin
    periodSeconds: {{ $s.probes.liveness.periodSeconds }}
    failureThreshold: {{ $s.probes.liveness.failureThreshold }}
    timeoutSeconds: {{ $s.probes.timeoutSeconds }}
  {{- if and (not $s.nativeSidecar) $s.holdApplicationUntilReady }}
  lifecycle:
    postStart:
      exec:
        # The image's health-check probe, retrying once a second for at most 60 s: a failing
        # hook restarts the container instead of hanging. No shell and no second JVM.
        command:
          - /usr/local/bin/egret-probe
          - --wait
          - "60"
          - {{ printf "127.0.0.1:%d" (int $s.ports.admin) | quote }}
          - /readyz
  {{- end }}
  resources:
    {{- toYaml $s.resources | nindent 4 }}
  securityContext:
    {{- toYaml $s.securityContext | nindent 4 }}
  volumeMounts:
    # The whole directory, never a subPath: kubelet swaps the directory's files atomically
    # when the ConfigMap (or a projected Secret) changes; a subPath mount never sees it.
    - name: egret-config
      mountPath: /etc/egret
      readOnly: true
    - name: egret-tmp
      mountPath: /tmp
    {{- with $s.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
The pod volumes Egret needs, as list items: /etc/egret projects the ConfigMap and any
configSources (e.g. a Secret with PEM files at certs/..., which the config then names by
relative path), /tmp is an emptyDir, then extraVolumes.
*/}}
{{- define "egret.volumes" -}}
{{- $s := include "egret.settings" . | fromYaml -}}
- name: egret-config
  projected:
    sources:
      - configMap:
          name: {{ include "egret.configMapName" . }}
      {{- with $s.configSources }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
- name: egret-tmp
  emptyDir:
    sizeLimit: {{ $s.tmpSizeLimit }}
{{- with include "egret.tracing.volumes" . }}
{{ . }}
{{- end }}
{{- with $s.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* HTTP_PROXY, HTTPS_PROXY and NO_PROXY for the app (EnvVar list items), optionally lower case too. */}}
{{- define "egret.env" -}}
{{- $s := include "egret.settings" . | fromYaml -}}
{{- $proxy := include "egret.proxyUrl" . -}}
{{- $noProxy := join "," $s.noProxy -}}
- name: HTTP_PROXY
  value: {{ $proxy | quote }}
- name: HTTPS_PROXY
  value: {{ $proxy | quote }}
- name: NO_PROXY
  value: {{ $noProxy | quote }}
{{- if $s.lowerCaseProxyEnv }}
- name: http_proxy
  value: {{ $proxy | quote }}
- name: https_proxy
  value: {{ $proxy | quote }}
- name: no_proxy
  value: {{ $noProxy | quote }}
{{- end }}
{{- end }}
