{{/*
The image of one binary: registry/name:tag, pinned by digest when
image.digests has one. Arguments: ctx (the root context), name (the
image's name), key (its key under image.digests).
*/}}
{{- define "staticroute.image" -}}
{{- $image := .ctx.Values.image -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $image.registry) .name ($image.tag | default .ctx.Chart.AppVersion) -}}
{{- with index $image.digests .key }}@{{ . }}{{ end -}}
{{- end -}}
