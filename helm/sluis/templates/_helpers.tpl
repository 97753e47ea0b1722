{{- define "sluis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The release name alone when it already contains the chart's name (no "sluis-sluis"). */}}
{{- define "sluis.fullname" -}}
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
{{- end -}}

{{- define "sluis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "sluis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end -}}

{{/* Labels of every object; "component" is added per object. */}}
{{- define "sluis.labels" -}}
helm.sh/chart: {{ include "sluis.chart" . }}
app.kubernetes.io/name: {{ include "sluis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluis
{{- end -}}

{{/* The gateway pods only: the migration Job's pods carry component "migrate" and never match. */}}
{{- define "sluis.selector" -}}
app.kubernetes.io/name: {{ include "sluis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "sluis.image" -}}
{{- $repo := required "image.repository is required: an image with the sluis package installed" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end -}}

{{- define "sluis.serverSecret" -}}
{{- if .Values.tls.certManager.enabled }}{{ include "sluis.fullname" . }}-server-tls{{ else }}{{ .Values.tls.serverSecret }}{{ end }}
{{- end -}}

{{/* The Secret cert-manager writes the client CA into (its key stays there, unmounted). */}}
{{- define "sluis.clientCaSecret" -}}
{{ include "sluis.fullname" . }}-client-ca
{{- end -}}

{{- define "sluis.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "sluis.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
{{- end -}}

{{/* Settings both the gateway and the migration Job need: the database, as a file. */}}
{{- define "sluis.databaseEnv" -}}
- name: SLUIS_HOME
  value: /var/lib/sluis
- name: SLUIS_DATABASE_URL_FILE
  value: /etc/sluis/database/url
- name: SLUIS_AUTO_MIGRATE
  value: "false"
- name: SLUIS_PUBLIC_URL
  value: {{ .Values.publicUrl | quote }}
{{- end -}}

{{/* Settings of the gateway itself. */}}
{{- define "sluis.env" -}}
{{ include "sluis.databaseEnv" . }}
- name: SLUIS_TOKEN_LIFETIME
  value: {{ .Values.tokenLifetime | quote }}
- name: SLUIS_TLS_CLIENT_CA
  value: /etc/sluis/client-ca/bundle.pem
- name: SLUIS_TLS_CRL
  value: /etc/sluis/crl/crl.pem
- name: SLUIS_SIGNING_KEY_FILE
  value: /etc/sluis/signing/key.pem
- name: SLUIS_AUDIT_KEY_FILE
  value: /etc/sluis/audit/key.pem
- name: POD_IP
  valueFrom:
    fieldRef: {fieldPath: status.podIP}
- name: SLUIS_HEALTH_HOST
  value: $(POD_IP)
- name: SLUIS_HEALTH_PORT
  value: {{ .Values.health.port | quote }}
{{- range $name, $value := .Values.extraSettings }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- range $name, $value := .Values.otel.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "sluis.databaseVolume" -}}
- name: database
  secret: {secretName: {{ .Values.database.urlSecret }}, defaultMode: 0440, items: [{key: url, path: url}]}
- name: home
  emptyDir: {}
{{- end -}}

{{- define "sluis.databaseMounts" -}}
- {name: database, mountPath: /etc/sluis/database, readOnly: true}
- {name: home, mountPath: /var/lib/sluis}
{{- end -}}

{{- define "sluis.volumes" -}}
{{ include "sluis.databaseVolume" . }}
{{- if .Values.tls.clientCaCertManager.enabled }}
- name: client-ca
  secret: {secretName: {{ include "sluis.clientCaSecret" . }}, defaultMode: 0440, items: [{key: ca.crt, path: bundle.pem}]}
{{- else }}
- name: client-ca
  configMap: {name: {{ .Values.tls.clientCaConfigMap }}}
{{- end }}
- name: crl
  configMap: {name: {{ .Values.tls.crlConfigMap }}}
- name: signing
  secret: {secretName: {{ .Values.keys.signingSecret }}, defaultMode: 0440}
- name: audit
  secret: {secretName: {{ .Values.keys.auditSecret }}, defaultMode: 0440}
{{- end -}}

{{- define "sluis.mounts" -}}
{{ include "sluis.databaseMounts" . }}
- {name: client-ca, mountPath: /etc/sluis/client-ca, readOnly: true}
- {name: crl, mountPath: /etc/sluis/crl, readOnly: true}
- {name: signing, mountPath: /etc/sluis/signing, readOnly: true}
- {name: audit, mountPath: /etc/sluis/audit, readOnly: true}
{{- end -}}
