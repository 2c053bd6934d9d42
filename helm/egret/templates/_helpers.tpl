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

{{/*
This chart's values in the shape of the egret-sidecar library's settings (charts/egret-sidecar,
whose named templates render Egret here exactly as they do in your own chart): the egret block,
plus the allowlist (config), the app's NO_PROXY and the ConfigMap's name. As YAML: fromYaml it.
*/}}
{{- define "egret.chartValues" -}}
{{- $v := deepCopy .Values.egret }}
{{- $_ := set $v "image" (merge (dict "tag" (default .Chart.AppVersion .Values.egret.image.tag)) (omit .Values.egret.image "tag")) }}
{{- $_ = set $v "config" .Values.config }}
{{- $_ = set $v "noProxy" .Values.app.noProxy }}
{{- $_ = set $v "lowerCaseProxyEnv" .Values.app.lowerCaseProxyEnv }}
{{- $_ = set $v "configMapName" (include "egret.fullname" .) }}
{{- /* egret.enforce: the library renders these as listen.transparent (templates/enforce.yaml). */}}
{{- $_ = set $v "transparent" (include "egret.enforce.transparentListen" . | fromYamlArray) }}
{{- /* tracing: the collector beside Egret and the config's tracing section (templates/tracing.yaml). */}}
{{- $_ = set $v "tracing" .Values.tracing }}
{{- toYaml $v }}
{{- end }}

{{/* The example app container: your task, with the proxy variables set. */}}
{{- define "egret.appContainer" -}}
{{- $egret := dict "root" . "values" (include "egret.chartValues" . | fromYaml) -}}
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
  {{- with .Values.app.ports }}
  ports:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  env:
    {{- include "egret.env" $egret | nindent 4 }}
    {{- with .Values.app.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.app.envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- range $probe := list "startupProbe" "readinessProbe" "livenessProbe" }}
  {{- with get $.Values.app $probe }}
  {{ $probe }}:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
  resources:
    {{- toYaml .Values.app.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.app.securityContext | nindent 4 }}
  {{- if or .Values.app.tmp.enabled .Values.app.volumeMounts }}
  volumeMounts:
    {{- if .Values.app.tmp.enabled }}
    # A writable /tmp under the read-only root filesystem.
    - name: app-tmp
      mountPath: /tmp
    {{- end }}
    {{- with .Values.app.volumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
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
    checksum/config: {{ include "egret.checksum" (dict "root" . "values" (include "egret.chartValues" . | fromYaml)) }}
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
  {{- $egret := dict "root" . "values" (include "egret.chartValues" . | fromYaml) }}
  {{- if .Values.egret.nativeSidecar }}
  initContainers:
    {{- with include "egret.enforce.initContainers" . | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with include "egret.tracing.collector" $egret | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- include "egret.container" $egret | nindent 4 }}
  containers:
    {{- include "egret.appContainer" . | nindent 4 }}
  {{- else }}
  {{- with include "egret.enforce.initContainers" . | trim }}
  initContainers:
    {{- . | nindent 4 }}
  {{- end }}
  containers:
    {{- with include "egret.tracing.collector" $egret | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- include "egret.container" $egret | nindent 4 }}
    {{- include "egret.appContainer" . | nindent 4 }}
  {{- end }}
  volumes:
    {{- include "egret.volumes" $egret | nindent 4 }}
    {{- if .Values.app.tmp.enabled }}
    - name: app-tmp
      emptyDir:
        sizeLimit: {{ .Values.app.tmp.sizeLimit }}
    {{- end }}
    {{- with include "egret.enforce.volumes" . | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .Values.workload.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
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
{{- /* The library's egret.container refuses a native sidecar before 1.29 and equal ports. */}}
{{- $_ := include "egret.container" (dict "root" . "values" (include "egret.chartValues" . | fromYaml)) }}
{{- if .Values.app.tmp.enabled }}
{{- range .Values.app.volumeMounts }}
{{- if eq (trimSuffix "/" .mountPath) "/tmp" }}
{{- fail "app.volumeMounts mounts /tmp, which app.tmp already mounts: set app.tmp.enabled=false to use your own" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq .Values.workload.kind "Job") (not .Values.egret.nativeSidecar) }}
{{- fail "workload.kind=Job needs egret.nativeSidecar=true: an ordinary Egret container never exits, so the Job's pod would never complete" }}
{{- end }}
{{- end }}
