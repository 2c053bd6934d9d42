{{/*
Names and labels. fullname is "<release>-egret" unless overridden, cut to 63 characters
because Kubernetes names and label values are limited to that.
*/}}
{{- define "egret.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "egret.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "egret.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "egret.selectorLabels" -}}
app.kubernetes.io/name: {{ include "egret.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "egret.labels" -}}
helm.sh/chart: {{ include "egret.chart" . }}
{{ include "egret.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "egret.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "egret.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "egret.image" -}}
{{- $img := .Values.egret.image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{/* The proxy URL the app uses: Egret on the pod's shared loopback. */}}
{{- define "egret.proxyUrl" -}}
{{- printf "http://127.0.0.1:%d" (int .Values.egret.ports.proxy) }}
{{- end }}

{{/*
Egret's config file. The chart owns `version` and `listen`: the proxy stays on loopback and
the admin port binds every interface so kubelet probes and Prometheus reach it.
*/}}
{{- define "egret.configFile" -}}
version: 1
listen:
  proxy: {{ printf "127.0.0.1:%d" (int .Values.egret.ports.proxy) | quote }}
  admin: {{ printf "0.0.0.0:%d" (int .Values.egret.ports.admin) | quote }}
{{- /* SPEC order, so the rendered file reads like the documented one. */}}
{{- range $key := list "mode" "plaintext" "tls" "addresses" "timeouts" "limits" "allow" "deny" }}
{{- if hasKey $.Values.config $key }}
{{ dict $key (get $.Values.config $key) | toYaml | trimSuffix "\n" }}
{{- end }}
{{- end }}
{{- end }}


{{/*
The Egret container. Used as a native sidecar (in initContainers, with restartPolicy: Always)
or, on clusters older than 1.29, as an ordinary container listed before the app.
The command is the image's ENTRYPOINT; the chart only passes `run`.
*/}}
{{- define "egret.container" -}}
- name: egret
  image: {{ include "egret.image" . }}
  imagePullPolicy: {{ .Values.egret.image.pullPolicy }}
  {{- if .Values.egret.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  args: ["run"]
  env:
    - name: EGRET_CONFIG
      value: /etc/egret/egret.yaml
    {{- with .Values.egret.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: proxy
      containerPort: {{ .Values.egret.ports.proxy }}
      protocol: TCP
    - name: admin
      containerPort: {{ .Values.egret.ports.admin }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /readyz
      port: admin
    periodSeconds: {{ .Values.egret.probes.startup.periodSeconds }}
    failureThreshold: {{ .Values.egret.probes.startup.failureThreshold }}
    timeoutSeconds: {{ .Values.egret.probes.timeoutSeconds }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
    periodSeconds: {{ .Values.egret.probes.readiness.periodSeconds }}
    failureThreshold: {{ .Values.egret.probes.readiness.failureThreshold }}
    timeoutSeconds: {{ .Values.egret.probes.timeoutSeconds }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: admin
    periodSeconds: {{ .Values.egret.probes.liveness.periodSeconds }}
    failureThreshold: {{ .Values.egret.probes.liveness.failureThreshold }}
    timeoutSeconds: {{ .Values.egret.probes.timeoutSeconds }}
  {{- if and (not .Values.egret.nativeSidecar) .Values.egret.holdApplicationUntilReady }}
  lifecycle:
    postStart:
      exec:
        # The image's health-check probe, retrying once a second for at most 60 s: a failing
        # hook restarts the container instead of hanging. No shell and no second JVM.
        command:
          - /usr/local/bin/egret-probe
          - --wait
          - "60"
          - {{ printf "127.0.0.1:%d" (int .Values.egret.ports.admin) | quote }}
          - /readyz
  {{- end }}
  resources:
    {{- toYaml .Values.egret.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.egret.securityContext | nindent 4 }}
  volumeMounts:
    # The whole directory, never a subPath: kubelet swaps the directory's files atomically
    # when the ConfigMap changes, and a subPath mount would never see the new version.
    - name: egret-config
      mountPath: /etc/egret
      readOnly: true
    - name: egret-tmp
      mountPath: /tmp
{{- end }}

{{/* HTTP_PROXY, HTTPS_PROXY and NO_PROXY for the app, upper case and optionally lower case. */}}
{{- define "egret.proxyEnv" -}}
{{- $proxy := include "egret.proxyUrl" . -}}
{{- $noProxy := join "," .Values.app.noProxy -}}
- name: HTTP_PROXY
  value: {{ $proxy | quote }}
- name: HTTPS_PROXY
  value: {{ $proxy | quote }}
- name: NO_PROXY
  value: {{ $noProxy | quote }}
{{- if .Values.app.lowerCaseProxyEnv }}
- name: http_proxy
  value: {{ $proxy | quote }}
- name: https_proxy
  value: {{ $proxy | quote }}
- name: no_proxy
  value: {{ $noProxy | quote }}
{{- end }}
{{- end }}

{{/* The example app container. */}}
{{- define "egret.appContainer" -}}
- name: {{ .Values.app.name }}
  image: {{ printf "%s:%s" .Values.app.image.repository .Values.app.image.tag }}
  imagePullPolicy: {{ .Values.app.image.pullPolicy }}
  {{- with .Values.app.command }}
  command:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.app.args }}
  args:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  env:
    {{- include "egret.proxyEnv" . | nindent 4 }}
    {{- with .Values.app.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  resources:
    {{- toYaml .Values.app.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.app.securityContext | nindent 4 }}
{{- end }}

{{/* The pod template shared by the Deployment and the Job. */}}
{{- define "egret.podTemplate" -}}
metadata:
  labels:
    {{- include "egret.labels" . | nindent 4 }}
    {{- with .Values.workload.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A new allowlist rolls the pods on `helm upgrade`; in-place ConfigMap edits are picked
    # up by Egret's hot reload instead.
    checksum/config: {{ include "egret.configFile" . | sha256sum }}
    {{- if .Values.monitoring.scrapeAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ .Values.egret.ports.admin | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with .Values.workload.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "egret.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
  # Service environment variables would only add noise (and hosts) to the app's environment.
  enableServiceLinks: false
  {{- if eq .Values.workload.kind "Job" }}
  restartPolicy: {{ .Values.workload.job.restartPolicy }}
  {{- end }}
  terminationGracePeriodSeconds: {{ .Values.workload.terminationGracePeriodSeconds }}
  {{- with .Values.workload.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.workload.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.workload.podSecurityContext | nindent 4 }}
  {{- if .Values.egret.nativeSidecar }}
  initContainers:
    {{- include "egret.container" . | nindent 4 }}
  containers:
    {{- include "egret.appContainer" . | nindent 4 }}
  {{- else }}
  containers:
    {{- include "egret.container" . | nindent 4 }}
    {{- include "egret.appContainer" . | nindent 4 }}
  {{- end }}
  volumes:
    - name: egret-config
      configMap:
        name: {{ include "egret.fullname" . }}
    - name: egret-tmp
      emptyDir:
        sizeLimit: {{ .Values.egret.tmpSizeLimit }}
  {{- with .Values.workload.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.workload.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.workload.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Refuse combinations that would deploy but not work. */}}
{{- define "egret.validate" -}}
{{- if and .Values.egret.nativeSidecar (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "egret.nativeSidecar=true needs Kubernetes 1.29 or newer (this cluster is %s): set egret.nativeSidecar=false, or pass --kube-version to helm template" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (eq .Values.workload.kind "Job") (not .Values.egret.nativeSidecar) }}
{{- fail "workload.kind=Job needs egret.nativeSidecar=true: an ordinary Egret container never exits, so the Job's pod would never complete" }}
{{- end }}
{{- if eq (int .Values.egret.ports.proxy) (int .Values.egret.ports.admin) }}
{{- fail "egret.ports.proxy and egret.ports.admin must differ" }}
{{- end }}
{{- end }}
