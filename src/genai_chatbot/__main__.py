from genai_chatbot.cli import main

main()
