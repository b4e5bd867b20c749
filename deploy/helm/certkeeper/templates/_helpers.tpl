{{/* The chart name, or nameOverride. */}}
{{- define "certkeeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of every resource: fullnameOverride, or release-chart (the release name alone when it contains the chart name). */}}
{{- define "certkeeper.fullname" -}}
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

{{/* Labels that select the pods. */}}
{{- define "certkeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "certkeeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "certkeeper.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "certkeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The pods' service account. */}}
{{- define "certkeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "certkeeper.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret certkeeper reads. */}}
{{- define "certkeeper.secretName" -}}
{{- default (include "certkeeper.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* "true" when the database is PostgreSQL: a Secret the chart does not see may hold it, or the chart's own holds a URL. */}}
{{- define "certkeeper.postgres" -}}
{{- if or .Values.secrets.existingSecret (index .Values.secrets.values .Values.secrets.databaseURLKey) }}true{{ end }}
{{- end }}

{{/* The image reference. */}}
{{- define "certkeeper.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Refuses values that cannot work. */}}
{{- define "certkeeper.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "certkeeper.postgres" .)) }}
{{- fail "replicaCount above 1 needs PostgreSQL: set secrets.values.database-url (or use secrets.existingSecret with a database-url key); SQLite serves one replica" }}
{{- end }}
{{- if and (not .Values.secrets.existingSecret) (not (index .Values.secrets.values .Values.secrets.masterKeyKey)) }}
{{- fail "the master key is required: set secrets.values.master-key (openssl rand -base64 32) or secrets.existingSecret" }}
{{- end }}
{{- end }}
