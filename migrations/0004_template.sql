-- Prompt templates: built-in (organization_id NULL) and per organization. `{{name}}` in the
-- prompts is replaced by the variable `name` when rendered.
CREATE TABLE template (
    template_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid REFERENCES organization (organization_id) ON DELETE CASCADE,
    slug            text NOT NULL,
    name            text NOT NULL,
    category        text NOT NULL DEFAULT 'general',
    description     text NOT NULL DEFAULT '',
    default_model   text NOT NULL,
    system_prompt   text NOT NULL DEFAULT '',
    user_prompt     text NOT NULL,
    parameters      jsonb NOT NULL DEFAULT '{}',
    -- [{"name": "texto", "description": "...", "required": true, "default": null}]
    variables       jsonb NOT NULL DEFAULT '[]',
    runs            bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX template_slug_key ON template (coalesce(organization_id, '00000000-0000-0000-0000-000000000000'::uuid), slug);
CREATE TRIGGER template_updated_at BEFORE UPDATE ON template FOR EACH ROW EXECUTE FUNCTION trigger_updated_at();

INSERT INTO template (slug, name, category, description, default_model, system_prompt, user_prompt, parameters, variables) VALUES
('resumo', 'Resumo', 'escrita', 'Resume um texto em poucas frases.', 'gpt-4o-mini',
 'Você resume textos em português do Brasil, com clareza e sem inventar fatos.',
 E'Resuma em {{frases}} frases:\n\n{{texto}}', '{"temperature": 0.3}',
 '[{"name": "texto", "description": "Texto a resumir", "required": true, "default": null},
   {"name": "frases", "description": "Número de frases", "required": false, "default": "3"}]'),
('traducao', 'Tradução', 'idiomas', 'Traduz um texto para outro idioma.', 'gpt-4o-mini',
 'Você é um tradutor profissional. Preserve o tom e a formatação.',
 E'Traduza para {{idioma}}:\n\n{{texto}}', '{"temperature": 0.2}',
 '[{"name": "texto", "description": "Texto original", "required": true, "default": null},
   {"name": "idioma", "description": "Idioma de destino", "required": false, "default": "inglês"}]'),
('email-profissional', 'E-mail profissional', 'escrita', 'Redige um e-mail formal a partir de tópicos.', 'gpt-4o-mini',
 'Você redige e-mails profissionais, cordiais e objetivos.',
 'Escreva um e-mail para {{destinatario}} sobre: {{assunto}}', '{"temperature": 0.5}',
 '[{"name": "destinatario", "description": "Para quem", "required": true, "default": null},
   {"name": "assunto", "description": "Do que se trata", "required": true, "default": null}]');
