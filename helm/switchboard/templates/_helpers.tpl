{{/* Names. Every object is prefixed with the full name: the release name, plus the
chart name unless the release name already holds it. */}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchboard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "switchboard.gateway.fullname" -}}{{ include "switchboard.fullname" . }}-gateway{{- end -}}
{{- define "switchboard.roomService.fullname" -}}{{ include "switchboard.fullname" . }}-room-service{{- end -}}
{{- define "switchboard.redis.fullname" -}}{{ include "switchboard.fullname" . }}-redis{{- end -}}

{{- define "switchboard.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "switchboard.fullname" .) -}}
{{- end -}}

{{/* The chart's standard labels. */}}
{{- define "switchboard.labels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchboard
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels selecting one component's pods; call with (list $ "gateway"). */}}
{{- define "switchboard.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "switchboard.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Standard labels plus the component's; call with (list $ "gateway"). */}}
{{- define "switchboard.componentLabels" -}}
{{ include "switchboard.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "switchboard.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Spread over nodes (and zones) unless the user gave constraints; call with
(list $ "gateway" $componentValues). */}}
{{- define "switchboard.topologySpread" -}}
{{- $root := index . 0 -}}
{{- $values := index . 2 -}}
{{- if $values.spreadAcrossZones }}
topologySpreadConstraints:
  {{- range list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "switchboard.selectorLabels" (list $root (index $ 1)) | nindent 8 }}
  {{- end }}
{{- else if $values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml $values.topologySpreadConstraints | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Scheduling and image-pull settings shared by the pod specs; call with
(list $ $componentValues). */}}
{{- define "switchboard.podScheduling" -}}
{{- $root := index . 0 -}}
{{- $values := index . 1 -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* The Redis settings both services get from the environment; call with
(list $ "GATEWAY") or (list $ "ROOM_SERVICE"). */}}
{{- define "switchboard.redisEnv" -}}
{{- $root := index . 0 -}}
{{- $prefix := index . 1 -}}
- name: {{ $prefix }}_REDIS__URL
  value: {{ include "switchboard.redisUrl" $root | quote }}
- name: {{ $prefix }}_REDIS__KEY_PREFIX
  value: {{ $root.Values.redis.keyPrefix | quote }}
{{- /* The bundled Redis has no password: a client sending one would be refused. */}}
{{- if and (not $root.Values.redis.enabled) (or $root.Values.redis.password $root.Values.secrets.existingSecret) }}
- name: {{ $prefix }}_REDIS__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "switchboard.secretName" $root }}
      key: redis-password
      optional: {{ empty $root.Values.redis.password }}
{{- end }}
{{- end -}}

{{- define "switchboard.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s:6379" (include "switchboard.redis.fullname" .) -}}
{{- else -}}
{{- required "redis.url is required when the bundled Redis is off (redis.enabled: false)" .Values.redis.url -}}
{{- end -}}
{{- end -}}

{{/* A value from the Secret; call with (list $ "jwt-secret" optional). */}}
{{- define "switchboard.secretEnv" -}}
valueFrom:
  secretKeyRef:
    name: {{ include "switchboard.secretName" (index . 0) }}
    key: {{ index . 1 }}
    {{- if index . 2 }}
    optional: true
    {{- end }}
{{- end -}}

{{/* terminationGracePeriodSeconds of a gateway: preStop + drain + client grace + 5 s. */}}
{{- define "switchboard.gateway.terminationGrace" -}}
{{- $drain := .Values.gateway.drain -}}
{{- add $drain.preStopSeconds $drain.timeoutSeconds $drain.clientGraceSeconds 5 -}}
{{- end -}}

{{/* The settings the chart manages, as environment variables (they take precedence
over the configuration file). */}}
{{- define "switchboard.gateway.managedEnv" -}}
- name: GATEWAY_ROOM_SERVICE__DISCOVERY
  value: kubernetes
- name: GATEWAY_ROOM_SERVICE__KUBERNETES__SERVICE
  value: {{ include "switchboard.roomService.fullname" . }}
- name: GATEWAY_ROOM_SERVICE__KUBERNETES__PORT
  value: grpc
- name: GATEWAY_DRAIN__TIMEOUT
  value: "{{ .Values.gateway.drain.timeoutSeconds }}s"
- name: GATEWAY_DRAIN__CLIENT_GRACE
  value: "{{ .Values.gateway.drain.clientGraceSeconds }}s"
{{- end -}}

{{/*
The fewest pods a component runs: its autoscaler's minimum when it has one, else its
replica count. Called with the component's values (.Values.gateway, .Values.roomService).
*/}}
{{- define "switchboard.minPods" -}}
{{- int (ternary .autoscaling.minReplicas .replicaCount .autoscaling.enabled) -}}
{{- end }}
