{{- define "sluis.name" -}}{{ .Chart.Name }}{{- end -}}
{{- define "sluis.fullname" -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "sluis.labels" -}}
app.kubernetes.io/name: {{ include "sluis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "sluis.selector" -}}
app.kubernetes.io/name: {{ include "sluis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "sluis.image" -}}
{{- required "image.repository is required: an image with the sluis package installed" .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{/* Settings every sluis container gets (the gateway and the migration job). */}}
{{- define "sluis.env" -}}
- name: SLUIS_HOME
  value: /var/lib/sluis
- name: SLUIS_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.database.urlSecret }}, key: url}
- name: SLUIS_AUTO_MIGRATE
  value: "false"
- name: SLUIS_PUBLIC_URL
  value: {{ .Values.publicUrl | quote }}
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
{{- range $name, $value := .Values.extraSettings }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- range $name, $value := .Values.otel.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}
{{- define "sluis.volumes" -}}
- name: client-ca
  configMap: {name: {{ .Values.tls.clientCaConfigMap }}}
- name: crl
  configMap: {name: {{ .Values.tls.crlConfigMap }}}
- name: signing
  secret: {secretName: {{ .Values.keys.signingSecret }}, defaultMode: 0400}
- name: audit
  secret: {secretName: {{ .Values.keys.auditSecret }}, defaultMode: 0400}
- name: home
  emptyDir: {}
{{- end -}}
{{- define "sluis.mounts" -}}
- {name: client-ca, mountPath: /etc/sluis/client-ca, readOnly: true}
- {name: crl, mountPath: /etc/sluis/crl, readOnly: true}
- {name: signing, mountPath: /etc/sluis/signing, readOnly: true}
- {name: audit, mountPath: /etc/sluis/audit, readOnly: true}
- {name: home, mountPath: /var/lib/sluis}
{{- end -}}
