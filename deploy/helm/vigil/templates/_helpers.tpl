{{- define "vigil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vigil.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vigil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vigil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vigil.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "vigil.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* vigil.yaml: the values' config with agent.listen from service.port and, unless the
     values set store.dsn or a PostgreSQL store, store.dsn on the data volume. Keys the chart
     owns are refused rather than silently replaced. */}}
{{- define "vigil.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $agent := dict -}}
{{- if hasKey $cfg "agent" -}}{{- $agent = get $cfg "agent" -}}{{- end -}}
{{- if hasKey $agent "listen" -}}
{{- fail "config.agent.listen is set by the chart (0.0.0.0:<service.port>): remove it and set service.port" -}}
{{- end -}}
{{- if ne (toString (get $agent "api_token")) "${VIGIL_API_TOKEN}" -}}
{{- fail "config.agent.api_token must be ${VIGIL_API_TOKEN}, the token of apiToken's Secret: the agent listens beyond loopback, so an empty token stops it at start, and a token written here would sit in a ConfigMap" -}}
{{- end -}}
{{- $_ := set $agent "listen" (printf "0.0.0.0:%v" .Values.service.port) -}}
{{- $_ := set $cfg "agent" $agent -}}
{{- $store := dict -}}
{{- if hasKey $cfg "store" -}}{{- $store = get $cfg "store" -}}{{- end -}}
{{- /* vigil's own default, vigil.db beside the config, is the read-only ConfigMap mount. */ -}}
{{- if and (not (hasKey $store "dsn")) (ne (toString (get $store "driver")) "postgres") -}}
{{- $_ := set $store "dsn" "/data/vigil.db" -}}
{{- end -}}
{{- $_ := set $cfg "store" $store -}}
{{- if and (gt (int .Values.replicas) 1) (ne (toString (get $store "driver")) "postgres") -}}
{{- fail "replicas above 1 need config.store.driver: postgres and its dsn: the replicas share one location through PostgreSQL (with SQLite each would keep its own history and verdicts)" -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
