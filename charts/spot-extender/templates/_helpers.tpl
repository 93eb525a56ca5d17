{{- define "spot-extender.namespace" -}}
{{- .Values.namespace | default .Release.Namespace -}}
{{- end -}}

{{/* The kustomize base labels everything app.kubernetes.io/name: spot-extender; so does the chart. */}}
{{- define "spot-extender.selectorLabels" -}}
app.kubernetes.io/name: spot-extender
{{- end -}}

{{- define "spot-extender.labels" -}}
{{ include "spot-extender.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "spot-extender.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The webhook with spot-extender's own CA and certificate: no tls Secret of the user's. */}}
{{- define "spot-extender.selfManagedCerts" -}}
{{- if and .Values.webhook.enabled (not .Values.tls.enabled) }}true{{ end -}}
{{- end -}}

{{- define "spot-extender.scheme" -}}
{{- if or .Values.tls.enabled (include "spot-extender.selfManagedCerts" .) }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{/* The names (and fixed ClusterIP) the self-managed serving certificate is for. */}}
{{- define "spot-extender.certHosts" -}}
{{- $ns := include "spot-extender.namespace" . -}}
{{- $hosts := list (printf "spot-extender.%s.svc" $ns) (printf "spot-extender.%s.svc.cluster.local" $ns) -}}
{{- with .Values.service.clusterIP }}{{ $hosts = append $hosts . }}{{ end -}}
{{- join "," $hosts -}}
{{- end -}}
