{{/* The chart's name, and the full name of its objects (release-chart, at most 63 characters). */}}
{{- define "palisade.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "palisade.fullname" -}}
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

{{/* Labels every object carries, and the subset that selects the agent's pods. */}}
{{- define "palisade.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "palisade.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "palisade.selectorLabels" -}}
app.kubernetes.io/name: {{ include "palisade.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node-agent
{{- end }}

{{- define "palisade.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "palisade.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "palisade.policyConfigMap" -}}
{{- default (printf "%s-policies" (include "palisade.fullname" .)) .Values.existingPolicyConfigMap }}
{{- end }}

{{/*
The agent's configuration file: the user's `config` over what the chart must decide itself
(where the mounted files are, and the metrics endpoint in the pod's network namespace).
*/}}
{{- define "palisade.agentConfig" -}}
{{- $metrics := dict "enabled" .Values.metrics.enabled "address" "0.0.0.0" "port" .Values.metrics.port }}
{{- if .Values.metrics.tlsSecret }}
{{- $_ := set $metrics "tls_certificate" "/etc/palisade/metrics-tls/tls.crt" }}
{{- $_ := set $metrics "tls_key" "/etc/palisade/metrics-tls/tls.key" }}
{{- end }}
{{- if .Values.metrics.bearerToken.secret }}
{{- $_ := set $metrics "bearer_token_file" (printf "/etc/palisade/metrics-token/%s" .Values.metrics.bearerToken.key) }}
{{- end }}
{{- $chart := dict "metrics" $metrics "status" (dict "file" "/run/palisade/status.json") "policies" (dict "directory" "/etc/palisade/policies") }}
{{- $config := mustMergeOverwrite (deepCopy .Values.config) $chart }}
{{- toYaml $config }}
{{- end }}
