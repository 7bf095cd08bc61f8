{{/*
Chart name, truncated to the 63 characters a DNS label allows.
*/}}
{{- define "arbiter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. When the release name already contains the chart name it is used as is.
*/}}
{{- define "arbiter.fullname" -}}
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

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "arbiter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "arbiter.labels" -}}
helm.sh/chart: {{ include "arbiter.chart" . }}
{{ include "arbiter.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: stable across upgrades, never include the version.
*/}}
{{- define "arbiter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "arbiter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Service account name.
*/}}
{{- define "arbiter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "arbiter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: repository@digest when a digest is set, repository:tag otherwise.
*/}}
{{- define "arbiter.image" -}}
{{- if and (ne .Chart.Name "arbiter") (not .Values.image.tag) (not .Values.image.digest) }}
{{- fail "image.tag (or image.digest) must be set when the Arbiter sidecar is rendered from another chart" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Name of the bundle ConfigMap.
*/}}
{{- define "arbiter.bundleConfigMapName" -}}
{{- /* From the release name only, so the sidecar template called from another chart (whose
       .Chart differs) names the same ConfigMap this chart renders. */ -}}
{{- default (printf "%s-arbiter-bundle" .Release.Name | trunc 63 | trimSuffix "-") .Values.bundle.configMap.name }}
{{- end }}

{{/*
ARBITER_GRPC_LISTEN value. A non-loopback TCP bind without TLS is refused here, as the server
refuses it at start-up, so the mistake shows at install time rather than as a crash loop.
*/}}
{{- define "arbiter.grpcListen" -}}
{{- if eq .Values.listener.mode "unix" }}
{{- printf "unix:%s/%s" .Values.listener.socketDir .Values.listener.socketName }}
{{- else }}
{{- if and (not .Values.listener.tls.enabled) (not (has .Values.listener.host (list "127.0.0.1" "::1" "localhost"))) }}
{{- fail (printf "listener.host %q is not loopback: set listener.tls.enabled=true with listener.tls.secretName, or use listener.mode=unix" .Values.listener.host) }}
{{- end }}
{{- printf "%s:%d" (.Values.listener.host | toString) (int .Values.listener.port) }}
{{- end }}
{{- end }}

{{/*
Secret with the listener's certificate.
*/}}
{{- define "arbiter.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "arbiter.fullname" .)) .Values.listener.tls.secretName }}
{{- end }}

{{/*
ARBITER_BUNDLE value for the chosen bundle source.
*/}}
{{- define "arbiter.bundleLocation" -}}
{{- if eq .Values.bundle.source "configMap" }}
{{- .Values.bundle.configMap.mountPath }}
{{- else if eq .Values.bundle.source "http" }}
{{- required "bundle.http.url is required when bundle.source=http" .Values.bundle.http.url }}
{{- else }}
{{- .Values.bundle.image.path }}
{{- end }}
{{- end }}

{{/*
"true" when the admin listener binds a non-loopback address (ARBITER_ADMIN_ALLOW_REMOTE=on is
then required by Arbiter, and the NetworkPolicy restricts the admin port), "" otherwise.
*/}}
{{- define "arbiter.adminRemote" -}}
{{- if not (has (.Values.admin.host | toString) (list "127.0.0.1" "::1" "localhost")) }}true{{ end }}
{{- end }}

{{/*
A native gRPC probe against the health listener. Argument: (dict "probe" <probe values> "port" <port>).
*/}}
{{- define "arbiter.grpcProbe" -}}
grpc:
  port: {{ .port }}
  {{- if .probe.service }}
  service: {{ .probe.service | quote }}
  {{- end }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end }}

{{/*
The Arbiter container, without the leading list dash. Shared by the standalone Deployment and
by arbiter.sidecarContainer. Context: an object with .Values (this chart's values), .Chart and
.Release.
*/}}
{{- define "arbiter.container" -}}
name: arbiter
image: {{ include "arbiter.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: ["serve"]
env:
  - name: ARBITER_GRPC_LISTEN
    value: {{ include "arbiter.grpcListen" . | quote }}
  - name: ARBITER_HEALTH_LISTEN
    value: {{ printf "0.0.0.0:%d" (int .Values.health.port) | quote }}
  - name: ARBITER_ADMIN_LISTEN
    value: {{ printf "%s:%d" (.Values.admin.host | toString) (int .Values.admin.port) | quote }}
  {{- if include "arbiter.adminRemote" . }}
  {{- /* Arbiter refuses a non-loopback admin bind without it; the NetworkPolicy restricts the port. */}}
  - name: ARBITER_ADMIN_ALLOW_REMOTE
    value: "on"
  {{- end }}
  {{- if .Values.admin.verbose }}
  - name: ARBITER_ADMIN_VERBOSE
    value: "on"
  {{- end }}
  - name: ARBITER_BUNDLE
    value: {{ include "arbiter.bundleLocation" . | quote }}
  {{- if eq .Values.bundle.source "http" }}
  - name: ARBITER_BUNDLE_POLL_SECONDS
    value: {{ .Values.bundle.http.pollSeconds | quote }}
  {{- end }}
  {{- with .Values.bundle.verification }}
  {{- if .enabled }}
  - name: ARBITER_BUNDLE_VERIFICATION_KEY
    value: {{ printf "%s/%s" .mountPath .secretKey | quote }}
  - name: ARBITER_BUNDLE_VERIFICATION_ALG
    value: {{ .algorithm | quote }}
  {{- if .keyId }}
  - name: ARBITER_BUNDLE_VERIFICATION_KEY_ID
    value: {{ .keyId | quote }}
  {{- end }}
  {{- if .scope }}
  - name: ARBITER_BUNDLE_VERIFICATION_SCOPE
    value: {{ .scope | quote }}
  {{- end }}
  {{- end }}
  {{- end }}
  {{- if and (eq .Values.listener.mode "tcp") .Values.listener.tls.enabled }}
  - name: ARBITER_TLS_CERT
    value: /etc/arbiter/tls/tls.crt
  - name: ARBITER_TLS_KEY
    value: /etc/arbiter/tls/tls.key
  {{- if .Values.listener.tls.clientAuth }}
  - name: ARBITER_TLS_CLIENT_CA
    value: /etc/arbiter/tls/ca.crt
  {{- end }}
  {{- end }}
  - name: ARBITER_DATA_DIR
    value: {{ .Values.dataVolume.mountPath | quote }}
  - name: ARBITER_AUDIT
    value: {{ ternary "on" "off" .Values.audit.enabled | quote }}
  - name: ARBITER_AUDIT_DURABILITY
    value: {{ .Values.audit.durability | quote }}
  - name: ARBITER_AUDIT_OVERFLOW
    value: {{ .Values.audit.overflow | quote }}
  - name: ARBITER_AUDIT_SPOOL_MAX_BYTES
    value: {{ .Values.audit.spoolMaxBytes | int64 | quote }}
  {{- if and .Values.audit.enabled .Values.audit.database.existingSecret }}
  - name: ARBITER_DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ .Values.audit.database.existingSecret }}
        key: {{ .Values.audit.database.secretKey }}
  {{- end }}
  - name: ARBITER_CACHE_MAX_ENTRIES
    value: {{ .Values.cache.maxEntries | int64 | quote }}
  - name: ARBITER_CACHE_MAX_BYTES
    value: {{ .Values.cache.maxBytes | int64 | quote }}
  - name: ARBITER_CACHE_TTL_MS
    value: {{ .Values.cache.ttlMs | int64 | quote }}
  - name: ARBITER_INSTANCE_ID
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  - name: ARBITER_LOG_LEVEL
    value: {{ .Values.logLevel | quote }}
  - name: ARBITER_SHUTDOWN_TIMEOUT_MS
    value: {{ .Values.shutdownTimeoutMs | int64 | quote }}
  {{- if and .Values.approvals.jwksConfigMap .Values.approvals.jwksUrl }}
  {{- fail "approvals: set jwksConfigMap or jwksUrl, not both" }}
  {{- end }}
  {{- if or .Values.approvals.jwksConfigMap .Values.approvals.jwksUrl }}
  - name: ARBITER_APPROVAL_KEYS
    value: {{ ternary (printf "%s/%s" .Values.approvals.mountPath .Values.approvals.jwksKey) .Values.approvals.jwksUrl (ne .Values.approvals.jwksConfigMap "") | quote }}
  - name: ARBITER_APPROVAL_KEYS_REFRESH_SECONDS
    value: {{ .Values.approvals.keysRefreshSeconds | int64 | quote }}
  {{- end }}
  {{- if .Values.approvals.audience }}
  - name: ARBITER_APPROVAL_AUDIENCE
    value: {{ .Values.approvals.audience | quote }}
  {{- end }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
ports:
  {{- if eq .Values.listener.mode "tcp" }}
  - name: grpc
    containerPort: {{ .Values.listener.port }}
    protocol: TCP
  {{- end }}
  - name: grpc-health
    containerPort: {{ .Values.health.port }}
    protocol: TCP
  - name: admin
    containerPort: {{ .Values.admin.port }}
    protocol: TCP
{{- if .Values.probes.startup.enabled }}
startupProbe:
  {{- include "arbiter.grpcProbe" (dict "probe" .Values.probes.startup "port" .Values.health.port) | nindent 2 }}
{{- end }}
{{- if .Values.probes.readiness.enabled }}
readinessProbe:
  {{- include "arbiter.grpcProbe" (dict "probe" .Values.probes.readiness "port" .Values.health.port) | nindent 2 }}
{{- end }}
{{- if .Values.probes.liveness.enabled }}
livenessProbe:
  {{- include "arbiter.grpcProbe" (dict "probe" .Values.probes.liveness "port" .Values.health.port) | nindent 2 }}
{{- end }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  - name: arbiter-data
    mountPath: {{ .Values.dataVolume.mountPath }}
  - name: arbiter-tmp
    mountPath: /tmp
  {{- if eq .Values.listener.mode "unix" }}
  - name: arbiter-socket
    mountPath: {{ .Values.listener.socketDir }}
  {{- end }}
  {{- if eq .Values.bundle.source "configMap" }}
  - name: arbiter-bundle
    mountPath: {{ .Values.bundle.configMap.mountPath }}
    readOnly: true
  {{- end }}
  {{- if and (eq .Values.listener.mode "tcp") .Values.listener.tls.enabled }}
  - name: arbiter-tls
    mountPath: /etc/arbiter/tls
    readOnly: true
  {{- end }}
  {{- if .Values.bundle.verification.enabled }}
  - name: arbiter-bundle-verification
    mountPath: {{ .Values.bundle.verification.mountPath }}
    readOnly: true
  {{- end }}
  {{- if .Values.approvals.jwksConfigMap }}
  - name: arbiter-approvers
    mountPath: {{ .Values.approvals.mountPath }}
    readOnly: true
  {{- end }}
{{- end }}

{{/*
Volumes the Arbiter container needs, as list items for a pod's volumes.
*/}}
{{- define "arbiter.volumes" -}}
- name: arbiter-data
  emptyDir:
    sizeLimit: {{ .Values.dataVolume.sizeLimit }}
- name: arbiter-tmp
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- if eq .Values.listener.mode "unix" }}
- name: arbiter-socket
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end }}
{{- if eq .Values.bundle.source "configMap" }}
- name: arbiter-bundle
  configMap:
    name: {{ include "arbiter.bundleConfigMapName" . }}
{{- end }}
{{- if and (eq .Values.listener.mode "tcp") .Values.listener.tls.enabled }}
- name: arbiter-tls
  secret:
    secretName: {{ include "arbiter.tlsSecretName" . }}
{{- end }}
{{- if .Values.bundle.verification.enabled }}
- name: arbiter-bundle-verification
  secret:
    secretName: {{ required "bundle.verification.secretName is required when bundle.verification.enabled=true" .Values.bundle.verification.secretName }}
    items:
      - key: {{ .Values.bundle.verification.secretKey }}
        path: {{ .Values.bundle.verification.secretKey }}
{{- end }}
{{- if .Values.approvals.jwksConfigMap }}
- name: arbiter-approvers
  configMap:
    name: {{ .Values.approvals.jwksConfigMap }}
{{- end }}
{{- end }}

{{/*
Arbiter as a native sidecar: one list item for the application's initContainers (restartPolicy:
Always keeps it running for the pod's lifetime, started and probed before the app containers).

Usage from another chart that depends on this one (alias "arbiter"):

  initContainers:
    {{- include "arbiter.sidecarContainer" (dict "Values" .Values.arbiter "Chart" .Chart "Release" .Release) | nindent 4 }}
  volumes:
    {{- include "arbiter.sidecarVolumes" (dict "Values" .Values.arbiter "Chart" .Chart "Release" .Release) | nindent 4 }}

and mount "arbiter-socket" at .Values.arbiter.listener.socketDir in the application container
(see arbiter.socketVolumeMount). Set .Values.arbiter.image.tag: .Chart here is the caller's chart.
*/}}
{{- define "arbiter.sidecarContainer" -}}
- {{- include "arbiter.container" . | nindent 2 }}
  restartPolicy: Always
{{- end }}

{{/*
Volumes for arbiter.sidecarContainer, as list items for the application pod's volumes.
*/}}
{{- define "arbiter.sidecarVolumes" -}}
{{- include "arbiter.volumes" . }}
{{- end }}

{{/*
Mount of the socket directory for the application container, as one list item.
*/}}
{{- define "arbiter.socketVolumeMount" -}}
- name: arbiter-socket
  mountPath: {{ .Values.listener.socketDir }}
{{- end }}

{{/*
Address the application dials: unix:///... for the socket, host:port otherwise.
*/}}
{{- define "arbiter.clientTarget" -}}
{{- if eq .Values.listener.mode "unix" }}
{{- printf "unix://%s/%s" .Values.listener.socketDir .Values.listener.socketName }}
{{- else }}
{{- printf "%s:%d" (include "arbiter.fullname" .) (int .Values.listener.port) }}
{{- end }}
{{- end }}
